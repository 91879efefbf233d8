//! CertificateSigningRequests (`certificates.k8s.io/v1`), as Kubernetes'
//! `pkg/registry/certificates/certificates` and `pkg/apis/certificates/validation`: the
//! requestor filled in from the requesting user, a status that starts empty, the request checked
//! as a signed PEM PKCS#10 CSR, and the split of who may write what: the object itself changes
//! only its metadata, `/status` the certificate and the conditions other than Approved/Denied,
//! `/approval` only the conditions. Signing is the signers' job, not the registry's.

use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestCondition,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use serde_json::{Value, json};
use skiff_apimachinery::validation::{self, FieldError, FieldPath};

use crate::auth::Authenticator;
use crate::registry::strategies::rbac::path_segment_name;
use crate::registry::strategies::{age_cell, col};
use crate::registry::{Column, NameRule, Strategy, Subresource};

/// CertificateSigningRequests.
pub struct CertificateSigningRequests;

/// The signer name v1 refuses (it was v1beta1's default).
const LEGACY_UNKNOWN_SIGNER: &str = "kubernetes.io/legacy-unknown";

/// The condition types that may only be `True`.
const TRUE_ONLY_CONDITIONS: [&str; 3] = ["Approved", "Denied", "Failed"];

/// Every key usage Kubernetes knows (`certificates.KeyUsage`), sorted as its error lists them.
const USAGES: [&str; 23] = [
    "any",
    "cert sign",
    "client auth",
    "code signing",
    "content commitment",
    "crl sign",
    "data encipherment",
    "decipher only",
    "digital signature",
    "email protection",
    "encipher only",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "key agreement",
    "key encipherment",
    "microsoft sgc",
    "netscape sgc",
    "ocsp signing",
    "s/mime",
    "server auth",
    "signing",
    "timestamping",
];

/// What one write may do, as Kubernetes' `certificateValidationOptions`: what a subresource
/// allows, and the bad data it tolerates because the stored object already has it.
#[derive(Debug, Default, Clone, Copy)]
struct Allow {
    /// Adding, changing or removing Approved/Denied conditions (`/approval`).
    approval_conditions: bool,
    /// Setting `status.certificate` (`/status`).
    certificate: bool,
    /// Both Approved and Denied, when the stored object has both.
    approved_and_denied: bool,
    /// The legacy-unknown signer, when the stored object has it.
    legacy_signer: bool,
    /// Repeated condition types, when the stored object has them.
    duplicate_condition_types: bool,
    /// Conditions without a type, when the stored object has one.
    empty_condition_type: bool,
    /// Any `status.certificate` content, when unchanged or already bad.
    arbitrary_certificate: bool,
    /// Usages outside the known set, when the stored object has one.
    unknown_usages: bool,
    /// Repeated usages, when the stored object has them.
    duplicate_usages: bool,
}

impl Allow {
    /// The tolerances for writing `new` over `old` (none for a create).
    fn of(new: &CertificateSigningRequest, old: Option<&CertificateSigningRequest>) -> Allow {
        let Some(old) = old else {
            return Allow::default();
        };
        let types: Vec<&str> = conditions(old).iter().map(|c| c.type_.as_str()).collect();
        let usages = old.spec.usages.as_deref().unwrap_or_default();
        let unchanged_certificate = certificate(new) == certificate(old);
        Allow {
            approval_conditions: false,
            certificate: false,
            approved_and_denied: types.contains(&"Approved") && types.contains(&"Denied"),
            legacy_signer: old.spec.signer_name == LEGACY_UNKNOWN_SIGNER,
            duplicate_condition_types: has_duplicates(&types),
            empty_condition_type: types.contains(&""),
            arbitrary_certificate: unchanged_certificate
                || validate_certificate(certificate(old)).is_err(),
            unknown_usages: usages.iter().any(|u| !USAGES.contains(&u.as_str())),
            duplicate_usages: has_duplicates(usages),
        }
    }
}

fn has_duplicates<T: PartialEq>(items: &[T]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, item)| items[..i].contains(item))
}

fn conditions(csr: &CertificateSigningRequest) -> &[CertificateSigningRequestCondition] {
    csr.status
        .as_ref()
        .and_then(|s| s.conditions.as_deref())
        .unwrap_or_default()
}

fn certificate(csr: &CertificateSigningRequest) -> &[u8] {
    csr.status
        .as_ref()
        .and_then(|s| s.certificate.as_ref())
        .map_or(&[], |c| c.0.as_slice())
}

/// One PEM block: its type, whether it has headers, its decoded bytes (Go's `pem.Decode`).
struct PemBlock {
    label: String,
    has_headers: bool,
    bytes: Vec<u8>,
}

/// The first PEM block in `data` and what follows it; `None` if there is none. Text before the
/// block is skipped, as Go's decoder skips it.
fn pem_block(data: &[u8]) -> Option<(PemBlock, &[u8])> {
    use base64::Engine;
    const BEGIN: &[u8] = b"-----BEGIN ";
    let mut rest = data;
    loop {
        let at = rest.windows(BEGIN.len()).position(|w| w == BEGIN)?;
        let after = &rest[at + BEGIN.len()..];
        let line_end = after
            .iter()
            .position(|&b| b == b'\n')
            .unwrap_or(after.len());
        let line = std::str::from_utf8(&after[..line_end]).ok()?.trim_end();
        let Some(label) = line.strip_suffix("-----") else {
            rest = after;
            continue;
        };
        let body = after.get(line_end + 1..).unwrap_or_default();
        let end_marker = format!("-----END {label}-----");
        let text = String::from_utf8_lossy(body);
        let Some(end) = text.find(&end_marker) else {
            rest = after;
            continue;
        };
        let mut has_headers = false;
        let mut encoded = String::new();
        for line in text[..end].lines() {
            if line.contains(':') {
                has_headers = true;
            } else {
                encoded.extend(line.chars().filter(|c| !c.is_whitespace()));
            }
        }
        let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(&encoded) else {
            rest = after;
            continue;
        };
        let consumed = end + end_marker.len();
        let remaining = &body[consumed.min(body.len())..];
        let block = PemBlock {
            label: label.to_owned(),
            has_headers,
            bytes,
        };
        return Some((block, remaining));
    }
}

/// Checks the request is a PEM `CERTIFICATE REQUEST` whose PKCS#10 signature verifies with
/// its own public key (Kubernetes' `ParseCSR` + `CheckSignature`); the error as Go words it.
fn validate_request(pem: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    let block = pem_block(pem)
        .map(|(block, _)| block)
        .filter(|b| b.label == "CERTIFICATE REQUEST")
        .ok_or("PEM block type must be CERTIFICATE REQUEST")?;
    let (_, csr) =
        x509_parser::certification_request::X509CertificationRequest::from_der(&block.bytes)
            .map_err(|err| format!("x509: malformed certificate request: {err}"))?;
    csr.verify_signature().map_err(|_| {
        let algorithm = csr
            .certification_request_info
            .subject_pki
            .algorithm
            .algorithm
            .to_id_string();
        match algorithm.as_str() {
            "1.2.840.10045.2.1" => "x509: ECDSA verification failure".to_owned(),
            "1.3.101.112" => "x509: Ed25519 verification failure".to_owned(),
            "1.2.840.113549.1.1.1" => "crypto/rsa: verification error".to_owned(),
            _ => "x509: cannot verify signature: algorithm unimplemented".to_owned(),
        }
    })
}

/// Checks an issued certificate: PEM `CERTIFICATE` blocks only, without headers, each holding
/// certificates that parse (Kubernetes' `validateCertificate`); empty is fine.
fn validate_certificate(mut pem: &[u8]) -> Result<(), String> {
    use x509_parser::prelude::FromDer;
    if pem.is_empty() {
        return Ok(());
    }
    let mut blocks = 0;
    while let Some((block, rest)) = pem_block(pem) {
        if block.label != "CERTIFICATE" {
            return Err(format!(
                "only CERTIFICATE PEM blocks are allowed, found {:?}",
                block.label
            ));
        }
        if block.has_headers {
            return Err("no PEM block headers are permitted".into());
        }
        blocks += 1;
        let mut der = block.bytes.as_slice();
        if der.is_empty() {
            return Err("found CERTIFICATE PEM block containing 0 certificates".into());
        }
        while !der.is_empty() {
            let (rest, _) = x509_parser::certificate::X509Certificate::from_der(der)
                .map_err(|err| format!("x509: malformed certificate: {err}"))?;
            der = rest;
        }
        pem = rest;
    }
    if blocks == 0 {
        return Err("must contain at least one CERTIFICATE PEM block".into());
    }
    Ok(())
}

/// Go's `%#v` of a byte slice, as Kubernetes prints an invalid request.
fn go_bytes(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "[]byte(nil)".into();
    }
    let hex: Vec<String> = bytes.iter().map(|b| format!("0x{b:x}")).collect();
    format!("[]byte{{{}}}", hex.join(", "))
}

/// Kubernetes' `ValidateSignerName`: `<domain>/<path>`, the domain of DNS-1123 labels with at
/// least one dot, the path of DNS-1123 subdomains separated by dots, 571 characters at most.
pub(crate) fn validate_signer_name(path: &FieldPath, name: &str) -> Vec<FieldError> {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let segments: Vec<&str> = name.split('/').collect();
    let [domain, rest] = segments[..] else {
        return vec![FieldError::invalid(
            path,
            name,
            "must be a fully qualified domain and path of the form 'example.com/signer-name'",
        )];
    };
    let mut errors = Vec::new();
    if domain.len() > validation::DNS1123_SUBDOMAIN_MAX_LENGTH {
        errors.push(FieldError::too_long(
            path,
            "",
            validation::DNS1123_SUBDOMAIN_MAX_LENGTH,
        ));
    }
    let labels: Vec<&str> = domain.split('.').collect();
    // One bad label is enough: the others would repeat the same message.
    if let Some((label, problems)) = labels
        .iter()
        .map(|l| (l, validation::is_dns1123_label(l)))
        .find(|(_, p)| !p.is_empty())
    {
        errors.extend(problems.iter().map(|p| {
            FieldError::invalid(path, domain, format!("validating label \"{label}\": {p}"))
        }));
    }
    if labels.len() < 2 {
        errors.push(FieldError::invalid(
            path,
            domain,
            "should be a domain with at least two segments separated by dots",
        ));
    }
    if let Some((label, problems)) = rest
        .split('.')
        .map(|l| (l, validation::is_dns1123_subdomain(l)))
        .find(|(_, p)| !p.is_empty())
    {
        errors.extend(problems.iter().map(|p| {
            FieldError::invalid(path, rest, format!("validating label \"{label}\": {p}"))
        }));
    }
    let max = validation::DNS1123_SUBDOMAIN_MAX_LENGTH
        + (validation::DNS1123_SUBDOMAIN_MAX_LENGTH + validation::DNS1123_LABEL_MAX_LENGTH + 1)
        + 1;
    if name.len() > max {
        errors.push(FieldError::too_long(path, "", max));
    }
    errors
}

/// Kubernetes' `validateCertificateSigningRequest`, beyond the metadata (which the registry
/// checks for every kind).
fn validate_csr(csr: &CertificateSigningRequest, allow: Allow) -> Vec<FieldError> {
    let spec = FieldPath::new("spec");
    let mut errors = Vec::new();
    if let Err(err) = validate_request(&csr.spec.request.0) {
        errors.push(FieldError::invalid_rendered(
            spec.child("request"),
            &go_bytes(&csr.spec.request.0),
            &err,
        ));
    }
    let usages = csr.spec.usages.as_deref().unwrap_or_default();
    if usages.is_empty() {
        errors.push(FieldError::required(spec.child("usages"), ""));
    }
    if !allow.unknown_usages {
        for (i, usage) in usages.iter().enumerate() {
            if !USAGES.contains(&usage.as_str()) {
                let path = spec.child("usages").index(i);
                errors.push(FieldError::not_supported(path, usage.as_str(), &USAGES));
            }
        }
    }
    if !allow.duplicate_usages {
        for (i, usage) in usages.iter().enumerate() {
            if usages[..i].contains(usage) {
                let path = spec.child("usages").index(i);
                errors.push(FieldError::duplicate(path, usage.as_str()));
            }
        }
    }
    let signer = &csr.spec.signer_name;
    if !allow.legacy_signer && signer == LEGACY_UNKNOWN_SIGNER {
        errors.push(FieldError::invalid(
            spec.child("signerName"),
            signer.as_str(),
            "the legacy signerName is not allowed via this API version",
        ));
    } else {
        errors.extend(validate_signer_name(&spec.child("signerName"), signer));
    }
    if let Some(seconds) = csr.spec.expiration_seconds.filter(|s| *s < 600) {
        errors.push(FieldError::invalid(
            spec.child("expirationSeconds"),
            seconds,
            "may not specify a duration less than 600 seconds (10 minutes)",
        ));
    }
    errors.extend(validate_conditions(csr, allow));
    if !allow.arbitrary_certificate
        && let Err(err) = validate_certificate(certificate(csr))
    {
        errors.push(FieldError::invalid(
            "status.certificate",
            "<certificate data>",
            err,
        ));
    }
    errors
}

/// Kubernetes' `validateConditions`.
fn validate_conditions(csr: &CertificateSigningRequest, allow: Allow) -> Vec<FieldError> {
    let path = FieldPath::new("status").child("conditions");
    let mut errors = Vec::new();
    let (mut approved, mut denied) = (false, false);
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in conditions(csr).iter().enumerate() {
        let at = path.index(i);
        if !allow.empty_condition_type && c.type_.is_empty() {
            errors.push(FieldError::required(at.child("type"), ""));
        }
        let allowed: &[&str] = if TRUE_ONLY_CONDITIONS.contains(&c.type_.as_str()) {
            &["True"]
        } else {
            &["False", "True", "Unknown"]
        };
        if c.status.is_empty() {
            errors.push(FieldError::required(at.child("status"), ""));
        } else if !allowed.contains(&c.status.as_str()) {
            let status = c.status.as_str();
            errors.push(FieldError::not_supported(
                at.child("status"),
                status,
                allowed,
            ));
        }
        if !allow.approved_and_denied {
            let exclusive = match c.type_.as_str() {
                "Approved" => {
                    approved = true;
                    denied
                }
                "Denied" => {
                    denied = true;
                    approved
                }
                _ => false,
            };
            if exclusive {
                errors.push(FieldError::invalid(
                    at.child("type"),
                    c.type_.as_str(),
                    "Approved and Denied conditions are mutually exclusive",
                ));
            }
        }
        if !allow.duplicate_condition_types && seen.contains(&c.type_.as_str()) {
            errors.push(FieldError::duplicate(at.child("type"), c.type_.as_str()));
        }
        seen.push(&c.type_);
    }
    errors
}

fn of_type<'a>(
    csr: &'a CertificateSigningRequest,
    type_: &str,
) -> Vec<&'a CertificateSigningRequestCondition> {
    conditions(csr)
        .iter()
        .filter(|c| c.type_ == type_)
        .collect()
}

/// Kubernetes' `validateCertificateSigningRequestUpdate` (object metadata is the registry's).
fn validate_update(
    new: &CertificateSigningRequest,
    old: &CertificateSigningRequest,
    allow: Allow,
) -> Vec<FieldError> {
    let mut errors = validate_csr(new, allow);
    let conditions_path = "status.conditions";
    for type_ in TRUE_ONLY_CONDITIONS {
        if of_type(new, type_).len() < of_type(old, type_).len() {
            errors.push(FieldError::forbidden(
                conditions_path,
                format!("updates may not remove a condition of type \"{type_}\""),
            ));
        }
    }
    if !allow.approval_conditions {
        for type_ in ["Approved", "Denied"] {
            let (before, after) = (of_type(old, type_), of_type(new, type_));
            let verb = match after.len().cmp(&before.len()) {
                // Removals are refused above.
                std::cmp::Ordering::Less => continue,
                std::cmp::Ordering::Greater => "add",
                std::cmp::Ordering::Equal if after != before => "modify",
                std::cmp::Ordering::Equal => continue,
            };
            errors.push(FieldError::forbidden(
                conditions_path,
                format!("updates may not {verb} a condition of type \"{type_}\""),
            ));
        }
    }
    if certificate(new) != certificate(old) {
        if !allow.certificate {
            errors.push(FieldError::forbidden(
                "status.certificate",
                "updates may not set certificate content",
            ));
        } else if !certificate(old).is_empty() {
            errors.push(FieldError::forbidden(
                "status.certificate",
                "updates may not modify existing certificate content",
            ));
        }
    }
    errors
}

/// Now, to the second (as `metav1.Time` is written).
fn now() -> Time {
    let now = jiff::Timestamp::now();
    Time(jiff::Timestamp::from_second(now.as_second()).unwrap_or(now))
}

/// Kubernetes' `populateConditionTimestamps`: a condition without `lastUpdateTime` gets now; one
/// without `lastTransitionTime` keeps the time of a stored condition of the same type and status,
/// else gets now.
fn populate_condition_timestamps(
    new: &mut CertificateSigningRequest,
    old: &CertificateSigningRequest,
) {
    let now = now();
    let before = conditions(old).to_vec();
    let Some(conditions) = new.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
        return;
    };
    for c in conditions {
        c.last_update_time.get_or_insert_with(|| now.clone());
        if c.last_transition_time.is_none() {
            let kept = before
                .iter()
                .find(|o| o.type_ == c.type_ && o.status == c.status)
                .and_then(|o| o.last_transition_time.clone());
            c.last_transition_time = Some(kept.unwrap_or_else(|| now.clone()));
        }
    }
}

/// Kubernetes' `preserveConditionInstances`: the stored conditions of `type_` replace the new
/// ones in place, unless the write added or removed some (which validation then refuses).
fn preserve_conditions(
    new: &mut CertificateSigningRequest,
    old: &CertificateSigningRequest,
    type_: &str,
) {
    let before: Vec<CertificateSigningRequestCondition> =
        of_type(old, type_).into_iter().cloned().collect();
    let Some(conditions) = new.status.as_mut().and_then(|s| s.conditions.as_mut()) else {
        return;
    };
    let at: Vec<usize> = (0..conditions.len())
        .filter(|&i| conditions[i].type_ == type_)
        .collect();
    if at.len() != before.len() {
        return;
    }
    for (i, condition) in at.into_iter().zip(before) {
        conditions[i] = condition;
    }
}

impl CertificateSigningRequests {
    /// Kubernetes' `PrepareForUpdate` of the CSR strategy (`through` = `None`), its status
    /// strategy and its approval strategy.
    pub(crate) fn prepare_update(
        &self,
        through: Option<Subresource>,
        new: &mut CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) {
        new.spec = old.spec.clone();
        match through {
            Some(Subresource::Status) => {
                preserve_conditions(new, old, "Approved");
                preserve_conditions(new, old, "Denied");
                populate_condition_timestamps(new, old);
            }
            Some(Subresource::Approval) => {
                populate_condition_timestamps(new, old);
                let conditions = new.status.take().and_then(|s| s.conditions);
                let mut status = old.status.clone().unwrap_or_default();
                status.conditions = conditions;
                new.status = Some(status);
            }
            _ => new.status = old.status.clone(),
        }
    }

    /// Kubernetes' `ValidateUpdate` of the CSR strategy (`through` = `None`), its status
    /// strategy (may set the certificate) and its approval strategy (may set Approved/Denied).
    pub(crate) fn validate_update_through(
        &self,
        through: Option<Subresource>,
        new: &CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) -> Vec<FieldError> {
        let mut allow = Allow::of(new, Some(old));
        match through {
            Some(Subresource::Status) => allow.certificate = true,
            Some(Subresource::Approval) => allow.approval_conditions = true,
            _ => {}
        }
        validate_update(new, old, allow)
    }
}

/// The CONDITION cell: Denied over Approved over Pending, then Failed and Issued.
fn condition_text(csr: &CertificateSigningRequest) -> String {
    let has = |t: &str| conditions(csr).iter().any(|c| c.type_ == t);
    let mut text = if has("Denied") {
        "Denied".to_owned()
    } else if has("Approved") {
        "Approved".to_owned()
    } else {
        "Pending".to_owned()
    };
    if has("Failed") {
        text.push_str(",Failed");
    }
    if !certificate(csr).is_empty() {
        text.push_str(",Issued");
    }
    text
}

impl Strategy<CertificateSigningRequest> for CertificateSigningRequests {
    fn prepare_for_create(&self, csr: &mut CertificateSigningRequest) {
        // The requestor is whoever sent the request, never what the body claims. Until skiff
        // authenticates users, every request is the admin the authenticator returns.
        let user = crate::auth::AdminForEveryone
            .authenticate(&axum::http::HeaderMap::new())
            .ok();
        let spec = &mut csr.spec;
        spec.username = user.as_ref().map(|u| u.name.clone());
        spec.groups = user.map(|u| u.groups).filter(|g| !g.is_empty());
        spec.uid = None;
        spec.extra = None;
        // Nobody creates a pre-approved (or pre-issued) request.
        csr.status = Some(Default::default());
    }

    fn validate(&self, csr: &CertificateSigningRequest) -> Vec<FieldError> {
        validate_csr(csr, Allow::of(csr, None))
    }

    fn validate_update(
        &self,
        new: &CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) -> Vec<FieldError> {
        self.validate_update_through(None, new, old)
    }

    fn prepare_for_update(
        &self,
        through: Option<Subresource>,
        new: &mut CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) {
        self.prepare_update(through, new, old)
    }

    fn validate_subresource_update(
        &self,
        sub: Subresource,
        new: &CertificateSigningRequest,
        old: &CertificateSigningRequest,
    ) -> Vec<FieldError> {
        self.validate_update_through(Some(sub), new, old)
    }

    fn name_rule(&self) -> NameRule {
        // "We don't care what you call your certificate requests": one path segment.
        path_segment_name
    }

    fn field_labels(&self) -> &'static [&'static str] {
        &["spec.signerName"]
    }

    fn field(&self, csr: &CertificateSigningRequest, label: &str) -> Option<String> {
        (label == "spec.signerName").then(|| csr.spec.signer_name.clone())
    }

    fn columns(&self) -> &'static [Column] {
        const {
            &[
                col("Name", 0, "The request's name."),
                col("Age", 0, "Time since the request was created."),
                col("SignerName", 0, "The signer asked to sign the request."),
                col("Requestor", 0, "Who created the request."),
                col("RequestedDuration", 0, "The validity the request asks for."),
                col(
                    "Condition",
                    0,
                    "Approved, Denied or Pending; Failed, Issued.",
                ),
            ]
        }
    }

    fn whole_row(&self) -> bool {
        // AGE is the second column, not the one after the kind's own.
        true
    }

    fn cells(&self, csr: &CertificateSigningRequest) -> Vec<Value> {
        let or_none = |s: &str| {
            if s.is_empty() {
                "<none>".to_owned()
            } else {
                s.to_owned()
            }
        };
        let duration = csr.spec.expiration_seconds.map_or("<none>".into(), |s| {
            crate::handlers::human_duration(s.into())
        });
        vec![
            json!(csr.metadata.name.clone().unwrap_or_default()),
            age_cell(csr.metadata.creation_timestamp.as_ref()),
            json!(or_none(&csr.spec.signer_name)),
            json!(csr.spec.username.clone().unwrap_or_default()),
            json!(duration),
            json!(condition_text(csr)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::ByteString;
    use k8s_openapi::api::certificates::v1::{
        CertificateSigningRequestSpec, CertificateSigningRequestStatus,
    };

    fn csr_pem() -> String {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["node-1".to_owned()]).unwrap();
        params.serialize_request(&key).unwrap().pem().unwrap()
    }

    fn csr(pem: &str) -> CertificateSigningRequest {
        CertificateSigningRequest {
            metadata: Default::default(),
            spec: CertificateSigningRequestSpec {
                request: ByteString(pem.as_bytes().to_vec()),
                signer_name: "example.com/signer".into(),
                usages: Some(vec!["client auth".into()]),
                ..Default::default()
            },
            status: Some(CertificateSigningRequestStatus::default()),
        }
    }

    fn condition(type_: &str) -> CertificateSigningRequestCondition {
        CertificateSigningRequestCondition {
            type_: type_.into(),
            status: "True".into(),
            ..Default::default()
        }
    }

    fn with_conditions(
        mut csr: CertificateSigningRequest,
        types: &[&str],
    ) -> CertificateSigningRequest {
        let status = csr.status.get_or_insert_with(Default::default);
        status.conditions = Some(types.iter().map(|t| condition(t)).collect());
        csr
    }

    fn messages(errors: &[FieldError]) -> Vec<String> {
        errors.iter().map(|e| e.to_string()).collect()
    }

    #[test]
    fn requests_must_be_signed_pem_csrs() {
        let pem = csr_pem();
        assert!(validate_request(pem.as_bytes()).is_ok());
        // A tampered signature no longer verifies.
        let block = pem_block(pem.as_bytes()).unwrap().0;
        let mut der = block.bytes.clone();
        let last = der.len() - 1;
        der[last] ^= 0x01;
        use base64::Engine;
        let body = base64::engine::general_purpose::STANDARD.encode(&der);
        let tampered = format!(
            "-----BEGIN CERTIFICATE REQUEST-----\n{body}\n-----END CERTIFICATE REQUEST-----\n"
        );
        assert_eq!(
            validate_request(tampered.as_bytes()).unwrap_err(),
            "x509: ECDSA verification failure"
        );
        let cases = [
            ("", "PEM block type must be CERTIFICATE REQUEST"),
            ("not pem", "PEM block type must be CERTIFICATE REQUEST"),
            (
                "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "PEM block type must be CERTIFICATE REQUEST",
            ),
        ];
        for (input, error) in cases {
            assert_eq!(
                validate_request(input.as_bytes()).unwrap_err(),
                error,
                "{input:?}"
            );
        }
        let garbage =
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n";
        assert!(
            validate_request(garbage.as_bytes())
                .unwrap_err()
                .starts_with("x509: malformed")
        );
    }

    #[test]
    fn create_validation_follows_kubernetes() {
        let pem = csr_pem();
        assert!(validate_csr(&csr(&pem), Allow::default()).is_empty());
        let mut bad = csr("junk");
        bad.spec.signer_name = String::new();
        bad.spec.usages = Some(vec![
            "client auth".into(),
            "nonsense".into(),
            "client auth".into(),
        ]);
        bad.spec.expiration_seconds = Some(599);
        let bad = with_conditions(bad, &["Approved", "Denied"]);
        let got = messages(&validate_csr(&bad, Allow::default()));
        let expected = [
            "spec.request: Invalid value: []byte{0x6a, 0x75, 0x6e, 0x6b}: PEM block type must be CERTIFICATE REQUEST",
            "spec.usages[1]: Unsupported value: \"nonsense\": supported values: \"any\", \"cert sign\", \"client auth\", \"code signing\", \"content commitment\", \"crl sign\", \"data encipherment\", \"decipher only\", \"digital signature\", \"email protection\", \"encipher only\", \"ipsec end system\", \"ipsec tunnel\", \"ipsec user\", \"key agreement\", \"key encipherment\", \"microsoft sgc\", \"netscape sgc\", \"ocsp signing\", \"s/mime\", \"server auth\", \"signing\", \"timestamping\"",
            "spec.usages[2]: Duplicate value: \"client auth\"",
            "spec.signerName: Required value",
            "spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)",
            "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive",
        ];
        assert_eq!(got, expected);
        let mut legacy = csr(&pem);
        legacy.spec.signer_name = LEGACY_UNKNOWN_SIGNER.into();
        assert_eq!(
            messages(&validate_csr(&legacy, Allow::default())),
            [
                "spec.signerName: Invalid value: \"kubernetes.io/legacy-unknown\": the legacy signerName is not allowed via this API version"
            ]
        );
    }

    #[test]
    fn signer_names_are_domain_and_path() {
        let path = FieldPath::new("spec").child("signerName");
        let cases: &[(&str, &[&str])] = &[
            ("example.com/signer", &[]),
            ("kubernetes.io/kube-apiserver-client", &[]),
            ("example.com/ns.name", &[]),
            ("", &["spec.signerName: Required value"]),
            (
                "example.com",
                &[
                    "spec.signerName: Invalid value: \"example.com\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
                ],
            ),
            (
                "a/b/c",
                &[
                    "spec.signerName: Invalid value: \"a/b/c\": must be a fully qualified domain and path of the form 'example.com/signer-name'",
                ],
            ),
            (
                "example/signer",
                &[
                    "spec.signerName: Invalid value: \"example\": should be a domain with at least two segments separated by dots",
                ],
            ),
            (
                "Example.com/signer",
                &[
                    "spec.signerName: Invalid value: \"Example.com\": validating label \"Example\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
                ],
            ),
        ];
        for (name, expected) in cases {
            assert_eq!(
                messages(&validate_signer_name(&path, name)),
                *expected,
                "{name:?}"
            );
        }
    }

    #[test]
    fn each_write_path_changes_only_its_part() {
        let s = CertificateSigningRequests;
        let pem = csr_pem();
        let old = csr(&pem);
        // The object itself: spec and status stay as stored.
        let mut new = with_conditions(csr(&pem), &["Approved"]);
        new.spec.signer_name = "example.com/other".into();
        s.prepare_update(None, &mut new, &old);
        assert_eq!(
            (new.spec.clone(), new.status.clone()),
            (old.spec.clone(), old.status.clone())
        );
        // /approval: the conditions, timestamped; nothing else.
        let mut new = with_conditions(csr(&pem), &["Approved"]);
        new.status.as_mut().unwrap().certificate = Some(ByteString(b"x".to_vec()));
        s.prepare_update(Some(Subresource::Approval), &mut new, &old);
        assert_eq!(certificate(&new), b"");
        let approved = &conditions(&new)[0];
        assert!(approved.last_update_time.is_some() && approved.last_transition_time.is_some());
        assert!(
            s.validate_update_through(Some(Subresource::Approval), &new, &old)
                .is_empty()
        );
        // The same conditions through /status or the object are refused.
        for through in [None, Some(Subresource::Status)] {
            let added = with_conditions(csr(&pem), &["Approved"]);
            assert_eq!(
                messages(&s.validate_update_through(through, &added, &old)),
                [
                    "status.conditions: Forbidden: updates may not add a condition of type \"Approved\""
                ],
                "{through:?}"
            );
        }
        // Denying an approved request: exclusive; un-approving: a removal.
        let deny = with_conditions(csr(&pem), &["Approved", "Denied"]);
        assert_eq!(
            messages(&s.validate_update_through(Some(Subresource::Approval), &deny, &new)),
            [
                "status.conditions[1].type: Invalid value: \"Denied\": Approved and Denied conditions are mutually exclusive"
            ]
        );
        let removed = csr(&pem);
        assert_eq!(
            messages(&s.validate_update_through(Some(Subresource::Approval), &removed, &new)),
            [
                "status.conditions: Forbidden: updates may not remove a condition of type \"Approved\""
            ]
        );
        // /status keeps the stored Approved condition as it was.
        let mut changed = with_conditions(csr(&pem), &["Approved"]);
        changed
            .status
            .as_mut()
            .unwrap()
            .conditions
            .as_mut()
            .unwrap()[0]
            .message = Some("edited".into());
        s.prepare_update(Some(Subresource::Status), &mut changed, &new);
        assert_eq!(conditions(&changed), conditions(&new));
        // /status may set a certificate once, never replace it.
        let mut issued = new.clone();
        issued.status.as_mut().unwrap().certificate = Some(ByteString(b"junk".to_vec()));
        assert_eq!(
            messages(&s.validate_update_through(Some(Subresource::Status), &issued, &new)),
            [
                "status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"
            ]
        );
        assert_eq!(
            messages(&s.validate_update_through(Some(Subresource::Approval), &issued, &new)),
            [
                "status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block",
                "status.certificate: Forbidden: updates may not set certificate content"
            ]
        );
    }

    #[test]
    fn the_condition_column_reads_like_kubectl() {
        let pem = csr_pem();
        let cases: &[(&[&str], bool, &str)] = &[
            (&[], false, "Pending"),
            (&["Approved"], false, "Approved"),
            (&["Approved"], true, "Approved,Issued"),
            (&["Denied"], false, "Denied"),
            (&["Approved", "Failed"], false, "Approved,Failed"),
        ];
        for (types, issued, text) in cases {
            let mut c = with_conditions(csr(&pem), types);
            if *issued {
                c.status.as_mut().unwrap().certificate = Some(ByteString(b"c".to_vec()));
            }
            assert_eq!(condition_text(&c), *text, "{types:?}");
        }
    }
}
