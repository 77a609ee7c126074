package nodescripts

import (
	"embed"
	"fmt"
	"strings"
	"text/template"
)

//go:embed scripts/*.sh scripts/parts/*.sh
var files embed.FS

// scripts holds every file under scripts/ and scripts/parts/ by base name.
var scripts = parse()

// parse reads the embedded scripts. Besides text/template's own functions
// they may call q (single-quote a value for the shell), join
// (strings.Join) and include (another file rendered with the given data,
// without its final newline: the including line supplies it).
func parse() *template.Template {
	t := template.New("nodescripts")
	t.Funcs(template.FuncMap{
		"q":    quote,
		"join": strings.Join,
		"include": func(name string, data any) (string, error) {
			s, err := execute(t, name, data)
			return strings.TrimSuffix(s, "\n"), err
		},
	})
	return template.Must(t.ParseFS(files, "scripts/*.sh", "scripts/parts/*.sh"))
}

func execute(t *template.Template, name string, data any) (string, error) {
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		return "", fmt.Errorf("render node script %s: %w", name, err)
	}
	return b.String(), nil
}

// render is the script in file name filled in from data. The files are
// parsed when the package loads and the tests render each one, so an error
// here is a bug in a file or its parameters: it panics.
func render(name string, data any) string {
	s, err := execute(scripts, name, data)
	if err != nil {
		panic(err)
	}
	return s
}

// renderLine is render for a one-line file, without its newline.
func renderLine(name string, data any) string {
	return strings.TrimSuffix(render(name, data), "\n")
}

// quote is s as one shell word in single quotes.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
