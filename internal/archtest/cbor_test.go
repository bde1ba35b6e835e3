package archtest

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// decoderPackage is where the project's CBOR decoders are built, with the
// limits on untrusted input decided once (STYLE.md §4).
const decoderPackage = "numeribus/internal/cborx"

// libraryDecoders are the names of the CBOR library that build a decoder
// or decode with the library's defaults, which have none of the limits.
var libraryDecoders = map[string]bool{
	"DecOptions": true, "DiagOptions": true, "Unmarshal": true, "UnmarshalFirst": true, "NewDecoder": true,
	"Valid": true, "Wellformed": true, "Diagnose": true, "DiagnoseFirst": true,
}

// No package but internal/cborx builds a CBOR decoder of its own or
// decodes with the library's defaults: the others take theirs from
// cborx.Untrusted or cborx.Trusted. Test files are free.
func TestOnlyCborxBuildsDecoders(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{.Dir}} {{join .GoFiles " "}} {{join .IgnoredGoFiles " "}}`, "numeribus/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	files := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if f[0] == decoderPackage {
			continue
		}
		for _, name := range f[2:] {
			files++
			for _, p := range cborDecoders(t, filepath.Join(f[1], name)) {
				t.Errorf("%s: %s: CBOR decoders are built in %s only", p.pos, p.what, decoderPackage)
			}
		}
	}
	if files < 50 {
		t.Fatalf("go list found only %d files", files)
	}
}

type finding struct {
	pos  token.Position
	what string
}

// cborDecoders returns where the Go file path names one of
// libraryDecoders, or calls the DecOptions method of a decoder (to copy
// and change its options).
func cborDecoders(t *testing.T, path string) []finding {
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var found []finding
	lib := ""
	for _, imp := range f.Imports {
		if p, _ := strconv.Unquote(imp.Path.Value); p == "github.com/fxamacker/cbor/v2" {
			lib = "cbor"
			if imp.Name != nil {
				lib = imp.Name.Name
			}
			if lib == "." {
				found = append(found, finding{fset.Position(imp.Pos()), "dot import of the CBOR library"})
			}
		}
	}
	// Without the import, a file can still copy a decoder's options.
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		x, isIdent := sel.X.(*ast.Ident)
		switch {
		case isIdent && lib != "" && x.Name == lib && libraryDecoders[sel.Sel.Name]:
			found = append(found, finding{fset.Position(sel.Pos()), lib + "." + sel.Sel.Name})
		case sel.Sel.Name == "DecOptions":
			found = append(found, finding{fset.Position(sel.Pos()), "DecOptions of a decoder"})
		}
		return true
	})
	return found
}
