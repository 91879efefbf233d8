/* SPDX-License-Identifier: Apache-2.0 */
/* Kernel macros the programs use that the uapi headers (or vmlinux.h) do not carry, defined
 * once for the service load balancer and the pod network alike. */
#pragma once

#ifndef TC_ACT_OK
#define TC_ACT_OK 0
#define TC_ACT_SHOT 2
#define TC_ACT_REDIRECT 7
#endif

#define ETH_P_IP_BE 0x0008 /* htons(ETH_P_IP) on little-endian */

#ifndef AF_INET
#define AF_INET 2
#endif
