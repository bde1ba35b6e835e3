package ui

// ConsentTextVersion is the version of the information text the consent
// forms show, to be read to the person (the consent_text_* texts), and of
// the notice that goes with it. It is stored with every consent given
// through the UI: change the wording, change the version (and the hash in
// TestConsentTextIsVersioned). ui-v1 was the screen before the text read
// to the person existed.
const ConsentTextVersion = "ui-v2"

// Req marks the group required (at least one box, or one radio).
func (c *choice) Req() *choice { c.Required = true; return c }

func init() {
	funcs["consentTextVersion"] = func() string { return ConsentTextVersion }
}
