// Progressive enhancement only: every page works without this file. It starts GOV.UK Frontend's
// components (Exit this page with Shift pressed three times, the error summary's focus, the
// character count, exclusive checkboxes).
import { initAll } from '/s-assets/govuk-frontend.min.js'

initAll()
