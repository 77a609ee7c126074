// Package etcd35 checks the etcd v2 calls a node makes at boot against the
// etcd Flatcar runs (etcd 3.5 in etcd-member.service, with ETCD_ENABLE_V2).
//
// It is its own module because the main module uses the etcd v3.7 line,
// which has no v2 API: the tests here start an embedded etcd 3.5 server with
// the v2 API on and run the exact commands from the cloud-config golden files
// (cloud-config/testdata) and the node scripts' golden files
// (nodescripts/testdata) with the real curl.
package etcd35
