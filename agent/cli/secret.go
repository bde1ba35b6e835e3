package cli

import (
	"bufio"
	"bytes"
	"fmt"
	"os"

	"numeribus/internal/apperr"
)

var errNoSecret = apperr.New(apperr.Auth, "aucune phrase de passe : utilisez --passphrase-file, NUMERIBUS_PASSPHRASE, ou lancez la commande dans un terminal")

// errEmptySecret: an empty passphrase is not a wrong one.
var errEmptySecret = apperr.New(apperr.Auth, "aucune phrase de passe saisie : tapez la phrase de passe ou le code de secours")

// MinPassphrase is the shortest passphrase init accepts.
const MinPassphrase = 8

// secret returns the passphrase from, in order: --passphrase-file, the
// NUMERIBUS_PASSPHRASE variable, or a prompt without echo (asked twice
// when confirm is set, as for a new passphrase).
func (c *common) secret(e *Env, label string, confirm bool) ([]byte, error) {
	if c.passFile != "" {
		return readSecretFile(c.passFile)
	}
	if v := e.Getenv("NUMERIBUS_PASSPHRASE"); v != "" {
		return []byte(v), nil
	}
	return prompt(e, label, confirm)
}

func prompt(e *Env, label string, confirm bool) ([]byte, error) {
	if e.Prompt == nil {
		return nil, errNoSecret
	}
	p, err := e.Prompt(label)
	if err != nil {
		return nil, fmt.Errorf("lecture de la phrase de passe : %w", err)
	}
	if confirm {
		again, err := e.Prompt("Confirmez : ")
		if err != nil {
			return nil, fmt.Errorf("lecture de la phrase de passe : %w", err)
		}
		defer clear(again)
		if !bytes.Equal(p, again) {
			clear(p)
			return nil, usagef("les deux saisies diffèrent")
		}
	}
	return p, nil
}

// readSecretFile reads the first line of a file, without its line ending.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("fichier de phrase de passe : %w", err)
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadBytes('\n')
	if err != nil && len(line) == 0 {
		return nil, apperr.Errorf(apperr.Auth, "fichier de phrase de passe %s vide", path)
	}
	line = bytes.TrimRight(line, "\r\n")
	if len(line) == 0 {
		return nil, apperr.Errorf(apperr.Auth, "fichier de phrase de passe %s vide", path)
	}
	return line, nil
}

func checkNew(p []byte) error {
	if len([]rune(string(p))) < MinPassphrase {
		return usagef("phrase de passe trop courte : au moins %d caractères", MinPassphrase)
	}
	return nil
}
