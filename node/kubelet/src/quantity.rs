//! Resource quantities as the kubelet reads them from pod specs: apimachinery's exact
//! [`Quantity`], and the conversions of CPU to CFS shares and quota (pkg/kubelet/cm's
//! `MilliCPUToShares`, `MilliCPUToQuota`).

use k8s_openapi::apimachinery::pkg::api::resource::Quantity as ApiQuantity;
pub use skiff_apimachinery::quantity::Quantity;

/// Shares of a container that asked for nothing (the kernel's minimum; Kubernetes' `MinShares`).
pub const MIN_SHARES: i64 = 2;
/// The kernel's maximum `cpu.shares` (`MaxShares`).
pub const MAX_SHARES: i64 = 262_144;
/// Shares per core (`SharesPerCPU`).
const SHARES_PER_CPU: i64 = 1024;
/// The kernel's minimum CFS quota, 1 ms (`MinQuotaPeriod`).
const MIN_QUOTA: i64 = 1000;

/// A quantity from the API; `None` if it does not parse (the apiserver refuses those, so only
/// an object written around it has one).
pub fn parse(quantity: &ApiQuantity) -> Option<Quantity> {
    Quantity::from_api(quantity).ok()
}

/// `MilliValue`: thousandths, rounded up (CPU in millicores).
pub fn milli_value(quantity: &ApiQuantity) -> Option<i64> {
    parse(quantity).map(|q| q.milli_value())
}

/// `Value`: base units, rounded up (bytes).
pub fn value(quantity: &ApiQuantity) -> Option<i64> {
    parse(quantity).map(|q| q.value())
}

/// `MilliCPUToShares`: 1024 shares per core, between [`MIN_SHARES`] and [`MAX_SHARES`].
pub fn milli_cpu_to_shares(milli_cpu: i64) -> i64 {
    if milli_cpu == 0 {
        // Kubernetes' choice for "no request": the kernel's minimum, not its default of 1024.
        return MIN_SHARES;
    }
    (milli_cpu.saturating_mul(SHARES_PER_CPU) / 1000).clamp(MIN_SHARES, MAX_SHARES)
}

/// `MilliCPUToQuota`: the CFS quota (µs per `period` µs) for a CPU limit; 0 (no quota) for no
/// limit, else at least the kernel's 1 ms.
pub fn milli_cpu_to_quota(milli_cpu: i64, period: i64) -> i64 {
    if milli_cpu == 0 {
        return 0;
    }
    (milli_cpu.saturating_mul(period) / 1000).max(MIN_QUOTA)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(text: &str) -> ApiQuantity {
        ApiQuantity(text.to_owned())
    }

    #[test]
    fn reads_exact_values() {
        assert_eq!(milli_value(&api("9m")), Some(9));
        assert_eq!(milli_value(&api("0.009")), Some(9));
        assert_eq!(milli_value(&api("500m")), Some(500));
        assert_eq!(milli_value(&api("1.5")), Some(1500));
        assert_eq!(milli_value(&api("2")), Some(2000));
        assert_eq!(value(&api("128Mi")), Some(128 << 20));
        assert_eq!(value(&api("1G")), Some(1_000_000_000));
        assert_eq!(value(&api("1e3")), Some(1000));
        assert_eq!(value(&api("0.5")), Some(1));
        assert_eq!(value(&api(" 1Ki ")), Some(1024));
        assert_eq!(value(&api("12x")), None);
        assert_eq!(milli_value(&api("abc")), None);
    }

    #[test]
    fn shares_and_quota_are_kubernetes() {
        let shares = [
            (0, 2),
            (1, 2),
            (2, 2),
            (3, 3),
            (9, 9),
            (100, 102),
            (250, 256),
            (1000, 1024),
            (1500, 1536),
            (256_000, 262_144),
            (300_000, 262_144),
            (i64::MAX, 262_144),
        ];
        for (milli, expected) in shares {
            assert_eq!(milli_cpu_to_shares(milli), expected, "{milli}m");
        }
        let quotas = [
            (0, 0),
            (1, 1000),
            (9, 1000),
            (10, 1000),
            (11, 1100),
            (500, 50_000),
            (1500, 150_000),
            (200_000, 20_000_000),
        ];
        for (milli, expected) in quotas {
            assert_eq!(milli_cpu_to_quota(milli, 100_000), expected, "{milli}m");
        }
    }
}
