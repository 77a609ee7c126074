// Package units is the typed model of systemd/fleet unit files: a unit is an
// ordered list of (section, name, value) options, never a map, because order
// and repeated keys such as ExecStartPre matter. It renders and parses unit
// text exactly, hashes options the way fleet does for idempotent submits,
// and validates unit names and [X-Fleet] options with fleet 1.0.0's rules.
// It is pure: it imports nothing else of the project.
package units
