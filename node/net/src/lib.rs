//! The node agent's pod network: podCIDR, CNI config, routes or tunnels to other nodes, uplink programs.
