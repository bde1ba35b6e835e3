package accounts

import "time"

// Action names what an audit entry records. The audit log answers "who
// saw or changed what, when": every login (failures included), every
// admin action, every access to personal data. It holds no personal data
// of beneficiaries, only what was accessed (a page, a filter, an export).
type Action string

// Audited actions.
const (
	ActionLogin         Action = "login"
	ActionLoginFailed   Action = "login_failed"
	ActionLoginLimited  Action = "login_rate_limited"
	ActionLogout        Action = "logout"
	ActionUserCreated   Action = "user_created"
	ActionUserDisabled  Action = "user_disabled"
	ActionUserEnabled   Action = "user_enabled"
	ActionPasswordReset Action = "password_reset"   // by an admin, or `hub user password`
	ActionTerritories   Action = "user_territories" // an admin changed what a user sees
	ActionAPITokenMade  Action = "api_token_created"
	ActionEnrollCreated Action = "enrollment_created"
	ActionDeviceRevoked Action = "device_revoked"
	ActionExport        Action = "export"        // a CSV download
	ActionPersonalRead  Action = "personal_read" // a page or API answer with personal data
	ActionDenied        Action = "denied"        // a request refused for lack of rights
)

// AuditEntry is one line of the audit log.
type AuditEntry struct {
	ID     int64
	At     time.Time
	UserID int64  // 0 when unknown (a failed login)
	Email  string // as typed for a failed login, else the user's
	Action Action
	What   string // the object: a device name, a filter, an export name
	IP     string // the client address
}

// AuditRetention is how long the audit log of accesses to personal data
// is kept (shared/DOMAIN.md, retention).
const AuditRetention = 365 * 24 * time.Hour
