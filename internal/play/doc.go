// Package play serves the live playground of `statelab play`: a page where a
// person shops through a real cluster, kills the replica that served them,
// and watches what the chosen strategy does to their cart.
//
// The package owns the dashboard (embedded HTML, CSS and JavaScript; no CDN),
// the Server-Sent Events stream that keeps it live, the control endpoints
// (strategy, kill, pause, resume, restart, add, remove, store stop and start,
// background shoppers), the reverse proxy that puts the real shop page behind
// the real balancer in a pane of the dashboard, and the event log that tells
// in plain words what happened to the carts.
//
// It does not own the cluster or the workload: it drives them through the
// small Cluster and Shoppers interfaces, which package cluster and package
// lab satisfy (see NewClusterStarter and NewLabShoppers). It never talks to
// a replica or the balancer except over HTTP, exactly as a user would.
//
// # Routes
//
//	GET  /                               the dashboard
//	GET  /play/assets/{file}             its embedded CSS and JavaScript
//	GET  /play/events                    Server-Sent Events: "state" and "log"
//	GET  /play/api/state                 the current State as JSON
//	GET  /play/api/log                   the event log as JSON
//	POST /play/api/strategy              {"strategy":"cache"}: rebuild the cluster
//	POST /play/api/replicas              add a replica
//	POST /play/api/replicas/{id}/{act}   act is kill, pause, resume or restart
//	DELETE /play/api/replicas/{id}       drain and remove a replica
//	POST /play/api/store/{act}           act is stop or start
//	POST /play/api/shoppers              {"on":true,"rate":10}
//	POST /play/api/game                  {"strategy":"checkpoint"}: start the game cluster
//	DELETE /play/api/game                stop it
//	POST /play/api/game/replicas/{id}/{act}  act on a game server
//	POST /play/api/game/move             {"move":"up"}: "you" move in the lobby
//	     /shop/...                       the shop page through the balancer
//	     anything else                   proxied to the balancer as is
//
// Everything proxied to the balancer is "you": the play server reads the
// cart in each response to tell you which replica served you and whether
// your cart survived (see the event log). Background shoppers go to the balancer
// directly and are not "you".
package play
