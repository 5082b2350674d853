"""Who may do what: API keys and roles, guards, the audit trail, retention and erasure."""
