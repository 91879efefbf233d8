/* SPDX-License-Identifier: Apache-2.0 */
/* Empty programs: the dataplane benchmark's anchors. Timed with BPF_PROG_TEST_RUN exactly as
 * lb4_xdp and lb4_tc_ingress are, they give what the test harness itself costs per packet
 * (context setup, the repeat loop, the timer), so the load balancer's own share is the
 * difference. Each is of the same type and section as its counterpart. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

SEC("xdp")
int empty_xdp(struct xdp_md *ctx)
{
	return XDP_PASS;
}

SEC("tcx/ingress")
int empty_tc(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}
