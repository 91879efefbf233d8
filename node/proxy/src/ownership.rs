//! Which Service owns which frontend. Two Services can ask for the same frontend (the same
//! ExternalIP and port, say); the maps hold one entry per frontend, so the first claimant
//! keeps it and the other is told, as kube-proxy keeps one rule.
//!
//! A frontend its owner no longer asks for is released: removed, unless a Service synced in
//! the same batch claims it, in which case it is rewritten for that Service in place. A
//! Service refused earlier gets it at its next sync.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::model::{Frontend, FrontendSpec};

/// A Service: (namespace, name).
pub type ServiceKey = (String, String);

/// The frontends each Service owns, and the owner of each frontend.
#[derive(Debug, Default)]
pub struct Ownership {
    owned: HashMap<ServiceKey, BTreeSet<Frontend>>,
    owner: HashMap<Frontend, ServiceKey>,
}

impl Ownership {
    /// `service` now asks for `desired` (nothing, once it is deleted). Returns the map
    /// changes (`None`: remove the frontend): the frontends it released, then those it owns.
    /// Applied in order over one batch, a released frontend another Service claims later in
    /// the batch ends up that Service's.
    pub fn update(
        &mut self,
        service: &ServiceKey,
        desired: BTreeMap<Frontend, FrontendSpec>,
    ) -> Vec<(Frontend, Option<FrontendSpec>)> {
        let mut changes = Vec::new();
        let before = self.owned.remove(service).unwrap_or_default();
        for frontend in &before {
            if !desired.contains_key(frontend) && self.owner.get(frontend) == Some(service) {
                self.owner.remove(frontend);
                changes.push((*frontend, None));
            }
        }
        let mut now = BTreeSet::new();
        for (frontend, spec) in desired {
            if let Some(other) = self.owner.get(&frontend)
                && other != service
            {
                tracing::warn!(?frontend, service = ?service, owner = ?other, "frontend claimed by two services; keeping the first");
                continue;
            }
            self.owner.insert(frontend, service.clone());
            now.insert(frontend);
            changes.push((frontend, Some(spec)));
        }
        if !now.is_empty() {
            self.owned.insert(service.clone(), now);
        }
        changes
    }

    /// The Service that owns `frontend`.
    pub fn owner(&self, frontend: &Frontend) -> Option<&ServiceKey> {
        self.owner.get(frontend)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn svc(name: &str) -> ServiceKey {
        ("default".into(), name.into())
    }

    fn frontend(last: u8) -> Frontend {
        Frontend {
            address: Ipv4Addr::new(10, 96, 0, last),
            port: 80,
            proto: crate::model::proto::TCP,
        }
    }

    /// `frontends` asked for by `service` (its name in each spec, to tell whose was written).
    fn asks(service: &str, frontends: &[u8]) -> BTreeMap<Frontend, FrontendSpec> {
        frontends
            .iter()
            .map(|f| {
                let spec = FrontendSpec {
                    service: service.into(),
                    flags: 0,
                    affinity_timeout: 0,
                    backends: Vec::new(),
                    terminating: BTreeSet::new(),
                    source_ranges: Vec::new(),
                };
                (frontend(*f), spec)
            })
            .collect()
    }

    /// The changes as (frontend's last octet, whose spec or None).
    fn summary(changes: &[(Frontend, Option<FrontendSpec>)]) -> Vec<(u8, Option<&str>)> {
        changes
            .iter()
            .map(|(f, s)| {
                (
                    f.address.octets()[3],
                    s.as_ref().map(|s| s.service.as_str()),
                )
            })
            .collect()
    }

    #[test]
    fn a_service_owns_what_it_asks_for_and_releases_what_it_drops() {
        let mut own = Ownership::default();
        let a = svc("a");
        let changes = own.update(&a, asks("a", &[1, 2]));
        assert_eq!(summary(&changes), [(1, Some("a")), (2, Some("a"))]);
        assert_eq!(own.owner(&frontend(1)), Some(&a));

        let changes = own.update(&a, asks("a", &[2, 3]));
        assert_eq!(
            summary(&changes),
            [(1, None), (2, Some("a")), (3, Some("a"))]
        );
        assert_eq!(own.owner(&frontend(1)), None);

        // Deleted: everything goes.
        let changes = own.update(&a, BTreeMap::new());
        assert_eq!(summary(&changes), [(2, None), (3, None)]);
        assert_eq!(own.owner(&frontend(2)), None);
        assert!(own.owned.is_empty() && own.owner.is_empty());
    }

    #[test]
    fn the_first_claimant_keeps_a_contested_frontend() {
        let mut own = Ownership::default();
        let (a, b) = (svc("a"), svc("b"));
        own.update(&a, asks("a", &[1]));
        let changes = own.update(&b, asks("b", &[1, 2]));
        assert_eq!(summary(&changes), [(2, Some("b"))]);
        assert_eq!(own.owner(&frontend(1)), Some(&a));
        // The loser dropping its claim does not take the frontend from the owner.
        let changes = own.update(&b, asks("b", &[2]));
        assert_eq!(summary(&changes), [(2, Some("b"))]);
        let changes = own.update(&b, BTreeMap::new());
        assert_eq!(summary(&changes), [(2, None)]);
        assert_eq!(own.owner(&frontend(1)), Some(&a));
    }

    #[test]
    fn a_released_frontend_is_handed_over() {
        let mut own = Ownership::default();
        let (a, b) = (svc("a"), svc("b"));
        own.update(&a, asks("a", &[1]));
        own.update(&b, asks("b", &[1]));
        // `a` lets go; in the same batch `b` claims it: applied in order, the frontend is
        // rewritten for `b`, never removed.
        let mut batch: BTreeMap<Frontend, Option<FrontendSpec>> = BTreeMap::new();
        batch.extend(own.update(&a, BTreeMap::new()));
        batch.extend(own.update(&b, asks("b", &[1])));
        let batch: Vec<_> = batch.into_iter().collect();
        assert_eq!(summary(&batch), [(1, Some("b"))]);
        assert_eq!(own.owner(&frontend(1)), Some(&b));
        // Later, `a` asks again: now `b` keeps it.
        assert!(own.update(&a, asks("a", &[1])).is_empty());
        assert_eq!(own.owner(&frontend(1)), Some(&b));
    }
}
