// Command etcd is etcd 3.5's server, built from the Go module proxy for the
// local cluster's stand-in of quay.io/coreos/etcd (the image Flatcar's
// etcd-member runs); deployctl cluster local builds it statically.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
