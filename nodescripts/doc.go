// Package nodescripts is the shell deployctl runs on a cluster's nodes over
// SSH, and only that: the bootstrap, etcd member add and remove, a node's
// leaving, the registrar's install, etcd's auth setup, the TLS install and
// the three passes of a CA rotation. Each script is a real shell file under
// scripts/ (shared pieces under scripts/parts/), embedded with go:embed and
// filled in by text/template from a typed parameter struct; the data a
// script gets (names, IPs, PEM text) is shell-quoted or in a quoted here
// document, and key material never enters a script's text (it arrives on
// standard input, see Secrets). The node paths and the etcd endpoint come
// from package cloudconfig, which renders the user data the nodes boot
// from.
package nodescripts
