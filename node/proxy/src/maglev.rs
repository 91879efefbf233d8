//! Maglev lookup tables (Eisenbud et al., NSDI 2016): every backend gets an almost equal share
//! of the table, and a change of one backend moves few other entries, so per-packet paths on
//! different nodes (same table, same hash) send a flow to the same backend.

/// Fills a table of `size` entries (a prime) with indexes into `backends`, whose names (the
/// stable identity of each backend, e.g. `address:port`) seed each backend's permutation.
/// Empty when there are no backends.
pub fn table(backends: &[String], size: usize) -> Vec<u32> {
    if backends.is_empty() {
        return Vec::new();
    }
    let m = size as u64;
    let perms: Vec<(u64, u64)> = backends
        .iter()
        .map(|name| {
            let offset = fnv1a(name.as_bytes(), 0xcbf2_9ce4_8422_2325) % m;
            let skip = fnv1a(name.as_bytes(), 0x8422_2325_cbf2_9ce4) % (m - 1) + 1;
            (offset, skip)
        })
        .collect();
    let mut next = vec![0u64; backends.len()];
    let mut entries = vec![u32::MAX; size];
    let mut filled = 0;
    'fill: loop {
        for (i, (offset, skip)) in perms.iter().enumerate() {
            let mut slot = ((offset + next[i] * skip) % m) as usize;
            while entries[slot] != u32::MAX {
                next[i] += 1;
                slot = ((offset + next[i] * skip) % m) as usize;
            }
            entries[slot] = i as u32;
            next[i] += 1;
            filled += 1;
            if filled == size {
                break 'fill;
            }
        }
    }
    entries
}

/// FNV-1a, 64 bits, from a chosen basis: stable across builds and machines (the standard
/// library's hashers promise neither).
fn fnv1a(bytes: &[u8], basis: u64) -> u64 {
    bytes.iter().fold(basis, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.244.0.{i}:8080")).collect()
    }

    #[test]
    fn shares_are_nearly_equal() {
        let t = table(&names(10), 1021);
        let mut counts = [0usize; 10];
        for e in &t {
            counts[*e as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(max - min <= 2, "{counts:?}");
    }

    #[test]
    fn removing_one_backend_moves_few_other_entries() {
        let before = table(&names(10), 1021);
        let mut fewer = names(10);
        fewer.remove(3);
        let after = table(&fewer, 1021);
        // Map the new indexes back to names to compare owners.
        let moved = before
            .iter()
            .zip(&after)
            .filter(|(b, a)| {
                let old = names(10)[**b as usize].clone();
                old != fewer[**a as usize] && **b != 3
            })
            .count();
        // Entries of the removed backend must move; of the others, only a few percent.
        assert!(
            moved < 1021 / 10,
            "{moved} entries of surviving backends moved"
        );
    }

    #[test]
    fn tables_are_deterministic_and_empty_without_backends() {
        assert_eq!(table(&names(4), 251), table(&names(4), 251));
        assert!(table(&[], 251).is_empty());
    }
}
