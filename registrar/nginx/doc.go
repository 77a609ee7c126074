// Package nginx keeps an nginx load balancer following the registrations
// under one etcd prefix. A Follower (New, then Run; Once for a single
// apply, Render for a dry run) is a level-triggered reconciler in one of
// two modes:
//
//   - Reload mode renders the instances into the upstream file, writes it
//     atomically, validates the whole configuration with `nginx -t`,
//     restores the last good files when nginx rejects them, and reloads
//     nginx: at once for the first change, then at most once per
//     MinReloadInterval with a trailing reload, so the final state is
//     always applied.
//   - Dynamic mode (Config.Dynamic) renders the upstream file once, with
//     the Lua balancer's settings and the balancer's hash (a new balancer
//     reloads nginx once), and pushes each change of instances to nginx's
//     control socket, confirmed by nginx's answer; a state file lets a
//     restarted nginx start from the last list.
//
// nginx is a host process (Host: by pid file or `nginx -s reload`) or a
// container's main process (Container: nginx -t by docker exec, reload by
// SIGHUP). Every step that talks to nginx or the engine has a deadline
// (StepTimeout), and a step that times out or cannot run is retried with
// backoff, never taken as a verdict on the configuration. A Prober
// controller is asked every Probe whether nginx runs, so in_sync drops
// within seconds of a crash and everything is applied again when nginx is
// back; in dynamic mode a control socket an unclean exit left is removed
// so that nginx can start again. A refusal nginx answers with only a
// status is reported with what nginx logged (LogReader).
package nginx
