//! Cluster mode. `slots` owns the node-wide slot map (which node serves each
//! of the 16384 hash slots, as the last committed cluster configuration says)
//! and the per-command routing check that turns a key's slot into "serve it
//! here", `-MOVED`, `-CLUSTERDOWN` or `-CROSSSLOT`; `identity` owns this
//! node's persistent 40-hex id. Standalone mode (the default) has no slot map
//! at all: the node owns every slot and nothing is checked.

pub mod identity;
pub mod slots;
