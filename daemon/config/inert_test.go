package config

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"go/types"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
)

const modulePath = "github.com/crio-appliance/crio"

// srcImporter type-checks crio's own packages from source and stands in an
// empty package for every other import. Expressions of third-party types
// stay untyped, but config fields are reached through config's own types,
// which resolve; so the test is fast and needs no build artefacts.
type srcImporter struct {
	fset  *token.FileSet
	ctxt  build.Context
	root  string // the module's directory
	pkgs  map[string]*types.Package
	infos map[string]*types.Info
}

func newSrcImporter(t *testing.T) *srcImporter {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctxt := build.Default
	ctxt.BuildTags = []string{"containers_image_openpgp", "exclude_graphdriver_btrfs"}
	ctxt.CgoEnabled = false
	return &srcImporter{fset: token.NewFileSet(), ctxt: ctxt, root: root,
		pkgs: map[string]*types.Package{}, infos: map[string]*types.Info{}}
}

func (im *srcImporter) Import(path string) (*types.Package, error) {
	if p, ok := im.pkgs[path]; ok {
		return p, nil
	}
	if !strings.HasPrefix(path, modulePath+"/") {
		p := types.NewPackage(path, path[strings.LastIndex(path, "/")+1:])
		p.MarkComplete()
		im.pkgs[path] = p
		return p, nil
	}
	return im.load(path), nil
}

// load type-checks the crio package path (type errors are expected: the
// stand-ins have no members) and keeps its Uses.
func (im *srcImporter) load(path string) *types.Package {
	if p, ok := im.pkgs[path]; ok {
		return p
	}
	dir := filepath.Join(im.root, strings.TrimPrefix(path, modulePath+"/"))
	bp, err := im.ctxt.ImportDir(dir, 0)
	if err != nil {
		im.pkgs[path] = types.NewPackage(path, filepath.Base(dir))
		return im.pkgs[path]
	}
	var files []*ast.File
	for _, name := range bp.GoFiles {
		if f, err := parser.ParseFile(im.fset, filepath.Join(dir, name), nil, 0); err == nil {
			files = append(files, f)
		}
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: im, Error: func(error) {}, FakeImportC: true}
	p, _ := conf.Check(path, im.fset, files, info)
	im.pkgs[path] = p
	im.infos[path] = info
	return p
}

// configFields maps each field of Config and its sub-tables, as the type
// checker sees them, to its dotted key ("crio.runtime.selinux"; handler
// keys as "crio.runtime.runtimes.<name>.monitor_path").
func configFields(t *testing.T, pkg *types.Package) map[*types.Var]string {
	t.Helper()
	out := map[*types.Var]string{}
	var walk func(st *types.Struct, prefix string)
	walk = func(st *types.Struct, prefix string) {
		for i := 0; i < st.NumFields(); i++ {
			f := st.Field(i)
			tag := reflect.StructTag(st.Tag(i)).Get("json")
			key := prefix + strings.Split(tag, ",")[0]
			typ := f.Type()
			if m, ok := typ.(*types.Map); ok {
				walk(m.Elem().Underlying().(*types.Struct), key+".<name>.")
				continue
			}
			if n, ok := typ.(*types.Named); ok && n.Obj().Pkg() == pkg {
				if sub, ok := n.Underlying().(*types.Struct); ok {
					walk(sub, key+".")
					continue
				}
			}
			out[f] = key
		}
	}
	obj := pkg.Scope().Lookup("Config")
	if obj == nil {
		t.Fatal("daemon/config has no Config type")
	}
	walk(obj.Type().Underlying().(*types.Struct), "crio.")
	if len(out) < 50 {
		t.Fatalf("only %d config keys found in the Go types", len(out))
	}
	return out
}

// readKeys lists, for each configuration key, where crio's packages under
// daemon/ read its field. daemon/config itself is left out: it merges,
// renders and validates every key, which is not acting on it.
func readKeys(t *testing.T) (all []string, read map[string][]string) {
	t.Helper()
	im := newSrcImporter(t)
	cfgPath := modulePath + "/daemon/config"
	fields := configFields(t, im.load(cfgPath))
	read = map[string][]string{}
	err := filepath.WalkDir(filepath.Join(im.root, "daemon"), func(dir string, d os.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if d.Name() == "testdata" {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(im.root, dir)
		path := modulePath + "/" + filepath.ToSlash(rel)
		if path == cfgPath {
			return nil
		}
		im.load(path)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for path, info := range im.infos {
		if notActing[path] {
			continue
		}
		for id, obj := range info.Uses {
			if v, ok := obj.(*types.Var); ok && v.IsField() {
				if key, ok := fields[v.Origin()]; ok {
					read[key] = append(read[key], im.fset.Position(id.Pos()).String())
				}
			}
		}
	}
	for _, k := range fields {
		all = append(all, k)
	}
	sort.Strings(all)
	return all, read
}

// notActing are crio's packages under daemon/ that read configuration
// without acting on it: the CLI and the node checks of `crio config
// validate` look at keys to report on them.
var notActing = map[string]bool{
	modulePath + "/daemon/config":    true,
	modulePath + "/daemon/cli":       true,
	modulePath + "/daemon/nodecheck": true,
}

// TestInertAttributeMatchesCode fails when a key without @crio(inert) is
// never read by the code that builds the daemon, or a key with it is: the
// attribute drives the warning and the docs' "Not yet acted on", so it
// must say what the code does.
func TestInertAttributeMatchesCode(t *testing.T) {
	all, read := readKeys(t)
	c, err := compileSchema()
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range all {
		p := strings.Split(strings.Replace(key, "<name>", mapProbe, 1), ".")
		field, ok := lookupSchema(c.config, p)
		if !ok {
			t.Errorf("%s: a Config field with no schema key", key)
			continue
		}
		switch inert, used := isInert(field), len(read[key]) > 0; {
		case inert && used:
			t.Errorf("%s is marked @crio(inert) but the daemon reads it (%s): drop the attribute", key, read[key][0])
		case !inert && !used:
			t.Errorf("%s is never read by the daemon: mark it @crio(inert) in schema/crio.cue, or act on it", key)
		}
	}
}

// TestReadKeysSeesReads guards the test above against a blind scanner: keys
// known to be acted on must be found.
func TestReadKeysSeesReads(t *testing.T) {
	_, read := readKeys(t)
	for _, key := range []string{"crio.api.listen", "crio.runtime.default_capabilities", "crio.image.image_volumes",
		"crio.runtime.runtimes.<name>.monitor_env", "crio.network.plugin_dirs"} {
		if len(read[key]) == 0 {
			t.Errorf("no read of %s found", key)
		}
	}
}

func TestInertKeyWarns(t *testing.T) {
	dir := tree(t, map[string]string{
		"crio.conf": "[crio.runtime]\nselinux = false\nhooks_dir = [\"/usr/share/containers/oci/hooks.d\"]\n",
		"crio.conf.d/10-x.conf": "[crio.runtime]\nselinux = true\n" +
			"[crio.image]\ninsecure_registries = [\"10.0.0.1:5000\"]\n",
	})
	r := mustLoad(t, dir, Flag{Name: "--hooks-dir", Key: "crio.runtime.hooks_dir", Value: []string{"/etc/hooks"}})
	got := strings.Join(r.Warnings, "\n")
	for _, want := range []string{
		filepath.Join(dir, "crio.conf.d/10-x.conf") + ":2: crio.runtime.selinux is set but crio does not act on it yet",
		filepath.Join(dir, "crio.conf.d/10-x.conf") + ":4: crio.image.insecure_registries is set but crio does not act on it yet",
		"flag --hooks-dir: crio.runtime.hooks_dir is set but crio does not act on it yet",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no warning %q in:\n%s", want, got)
		}
	}
	// Defaults spelled out (as CRI-O's packaged files do) stay quiet.
	if strings.Contains(got, "crio.conf:") {
		t.Errorf("a default value gave a warning:\n%s", got)
	}
}

// TestRenderMarksInertKeys: `crio config` says which keys do nothing.
func TestRenderMarksInertKeys(t *testing.T) {
	text := DefaultTOML()
	// The comment block above a key, its "#" and line breaks removed.
	commentOf := func(key string) string {
		i := strings.Index(text, "\n"+key+" = ")
		if i < 0 {
			t.Fatalf("%s not rendered", key)
		}
		block := text[strings.LastIndex(text[:i], "\n\n")+2 : i]
		return strings.Join(strings.Fields(strings.ReplaceAll(block, "#", "")), " ")
	}
	if !strings.Contains(commentOf("selinux"), InertNote) {
		t.Errorf("selinux rendered without the note: %q", commentOf("selinux"))
	}
	if strings.Contains(commentOf("image_volumes"), "acted on") {
		t.Errorf("image_volumes rendered with the note: %q", commentOf("image_volumes"))
	}
}
