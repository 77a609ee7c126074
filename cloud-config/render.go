package cloudconfig

import (
	"bytes"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"
)

// Header is the first line coreos-cloudinit requires.
const Header = "#cloud-config"

// MaxUserData is DigitalOcean's limit on a droplet's user data.
const MaxUserData = 64 * 1024

// ErrTooLarge is returned when rendered user data exceeds MaxUserData.
type ErrTooLarge struct{ Size int }

func (e *ErrTooLarge) Error() string {
	return fmt.Sprintf("cloud-config is %d bytes; DigitalOcean accepts at most %d bytes of user data (move large files out, e.g. ship them over SSH)", e.Size, MaxUserData)
}

// Render writes c as #cloud-config YAML: underscore keys only (Flatcar
// ignores hyphenated ones), deterministic order, strings holding $variables
// or file permissions double-quoted (so an empty substitution stays a
// string), multi-line content as literal blocks. It fails when the result
// exceeds DigitalOcean's 64 KiB.
func Render(c *Config) ([]byte, error) {
	var n yaml.Node
	if err := n.Encode(c); err != nil {
		return nil, fmt.Errorf("encode cloud-config: %w", err)
	}
	style(&n, "")
	var b bytes.Buffer
	b.WriteString(Header + "\n")
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&n); err != nil {
		return nil, fmt.Errorf("render cloud-config: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	if b.Len() > MaxUserData {
		return nil, &ErrTooLarge{Size: b.Len()}
	}
	return b.Bytes(), nil
}

// style sets scalar styles: literal blocks for multi-line text, double
// quotes for $-substitutions and permissions.
func style(n *yaml.Node, key string) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for _, c := range n.Content {
			style(c, key)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			style(n.Content[i+1], n.Content[i].Value)
		}
	case yaml.ScalarNode:
		if n.Tag != "!!str" {
			return
		}
		switch {
		case strings.Contains(n.Value, "\n"):
			n.Style = yaml.LiteralStyle
		case strings.Contains(n.Value, "$") || key == "permissions":
			n.Style = yaml.DoubleQuotedStyle
		}
	}
}
