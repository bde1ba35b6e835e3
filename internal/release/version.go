package release

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Version is a release version: MAJOR.MINOR.PATCH with an optional
// pre-release, ordered as Semantic Versioning 2.0 orders them
// (1.2.0-rc.1 < 1.2.0 < 1.10.0).
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated pre-release identifiers
}

var versionRe = regexp.MustCompile(`^v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)(?:-([0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*))?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$`)

// gitDescribe matches what `git describe` appends after a tag: commits
// since it and the commit ("3-gc212498"), a work tree with edits ("dirty").
var gitDescribe = regexp.MustCompile(`(^|-)[0-9]+-g[0-9a-f]{4,}($|-)|dirty`)

// ParseVersion reads a release version, with or without a leading "v".
// Development builds are refused: "dev", a bare commit, and what
// `git describe` prints between tags ("v1.2.0-3-gc212498", "…-dirty"),
// which Semantic Versioning would misorder (as a pre-release of 1.2.0,
// older than 1.2.0): such builds never update themselves.
func ParseVersion(s string) (Version, error) {
	m := versionRe.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("« %s » n'est pas une version publiée (attendu : MAJEUR.MINEUR.CORRECTIF, par exemple 1.4.0)", s)
	}
	var v Version
	for i, p := range []*uint64{&v.Major, &v.Minor, &v.Patch} {
		n, err := strconv.ParseUint(m[i+1], 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("version « %s » : %w", s, err)
		}
		*p = n
	}
	if m[4] != "" {
		if gitDescribe.MatchString(m[4]) {
			return Version{}, fmt.Errorf("« %s » est une version de développement (git describe), pas une version publiée", s)
		}
		v.Pre = strings.Split(m[4], ".")
		for _, id := range v.Pre {
			if len(id) > 1 && id[0] == '0' && numeric(id) {
				return Version{}, fmt.Errorf("version « %s » : identifiant %q avec un zéro en tête", s, id)
			}
		}
	}
	return v, nil
}

// IsRelease reports whether s is a release version (ParseVersion reads
// it): an agent built otherwise never updates itself.
func IsRelease(s string) bool {
	_, err := ParseVersion(s)
	return err == nil
}

func numeric(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// Compare returns -1, 0 or +1 as v is older than, the same as, or newer
// than w.
func (v Version) Compare(w Version) int {
	for _, d := range [][2]uint64{{v.Major, w.Major}, {v.Minor, w.Minor}, {v.Patch, w.Patch}} {
		if d[0] != d[1] {
			return cmp(d[0] < d[1])
		}
	}
	// A version without pre-release is newer than its pre-releases.
	switch {
	case len(v.Pre) == 0 && len(w.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(w.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(w.Pre); i++ {
		a, b := v.Pre[i], w.Pre[i]
		if a == b {
			continue
		}
		an, bn := numeric(a), numeric(b)
		switch {
		case an && bn:
			if len(a) != len(b) {
				return cmp(len(a) < len(b))
			}
			return cmp(a < b)
		case an: // numeric identifiers sort before alphanumeric ones
			return -1
		case bn:
			return 1
		}
		return cmp(a < b)
	}
	if len(v.Pre) == len(w.Pre) {
		return 0
	}
	return cmp(len(v.Pre) < len(w.Pre))
}

func cmp(less bool) int {
	if less {
		return -1
	}
	return 1
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	return s
}

// Newer reports whether candidate is a newer release than current. A
// current version that is not a release (a development build) is never
// older than anything: it does not update.
func Newer(candidate, current string) (bool, error) {
	cur, err := ParseVersion(current)
	if err != nil {
		return false, err
	}
	c, err := ParseVersion(candidate)
	if err != nil {
		return false, err
	}
	return c.Compare(cur) > 0, nil
}
