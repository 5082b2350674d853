"""Organisations, referrals and episodes, instruments, the contact ledger, survey links and responses."""
