//! Netlink without an async runtime: links, veths, addresses, routes, neighbours, network namespaces.
