package catalog

// Follow exposes follow to the external tests.
var Follow = follow
