//! Generating a CA and a serving certificate for the webhook (rcgen).
//!
//! Used by `fluxgate serve` when no certificate is given. The CA is what the API server must
//! trust (`caBundle`); the serving certificate carries the names clients connect to.

use chrono::{DateTime, Utc};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// PEM texts of a generated CA and serving certificate.
pub struct GeneratedCerts {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

/// The names every generated serving certificate carries, so loopback clients can verify it.
const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// A CA: its certificate and its private key, PEM.
pub(crate) struct Ca {
    pub(crate) pem: String,
    pub(crate) key_pem: String,
}

/// How long a CA lasts: what the webhook configuration's caBundle holds, so it outlives the
/// serving certificates it signs (re-issued yearly) by far.
const CA_DAYS: i64 = 10 * 365;
/// How long a serving certificate lasts.
const LEAF_DAYS: i64 = 365;

/// Generates a CA and a serving certificate for `localhost`, the loopback addresses and
/// `dns_names`, valid from the day before `now`.
pub fn generate(dns_names: &[String], now: DateTime<Utc>) -> Result<GeneratedCerts, rcgen::Error> {
    issue(dns_names, &generate_ca(now)?, now)
}

/// A new CA, valid for ten years.
pub(crate) fn generate_ca(now: DateTime<Utc>) -> Result<Ca, rcgen::Error> {
    let key = KeyPair::generate()?;
    let cert = ca_params(CA_DAYS, now).self_signed(&key)?;
    Ok(Ca {
        pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The CA's certificate parameters; the same for every fluxgate CA, so a CA is rebuilt from
/// its key alone to sign (the subject and key identify it, and `ca.crt` stays what it was).
fn ca_params(days: i64, now: DateTime<Utc>) -> CertificateParams {
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "fluxgate CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    set_validity(&mut ca_params, days, now);
    ca_params
}

/// A serving certificate for `localhost`, the loopback addresses and `dns_names`, signed by
/// `ca`, valid for a year.
pub(crate) fn issue(
    dns_names: &[String],
    ca: &Ca,
    now: DateTime<Utc>,
) -> Result<GeneratedCerts, rcgen::Error> {
    let ca_key = KeyPair::from_pem(&ca.key_pem)?;
    let issuer = Issuer::new(ca_params(CA_DAYS, now), ca_key);

    let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|n| n.to_string()).collect();
    names.extend(dns_names.iter().cloned());
    names.dedup();
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, names[0].clone());
    params.subject_alt_names = names
        .iter()
        .map(|n| match n.parse::<std::net::IpAddr>() {
            Ok(ip) => Ok(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().map(SanType::DnsName),
        })
        .collect::<Result<_, _>>()?;
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params, LEAF_DAYS, now);
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &issuer)?;
    Ok(GeneratedCerts {
        ca_pem: ca.pem.clone(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// The DNS names of a Service, as the API server and in-cluster clients address it.
pub(crate) fn service_names(service: &str, namespace: &str) -> Vec<String> {
    vec![
        service.to_owned(),
        format!("{service}.{namespace}"),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}

/// Valid from the day before `now` (clock skew between nodes) to `days` after it.
fn set_validity(params: &mut CertificateParams, days: i64, now: DateTime<Utc>) {
    use chrono::Datelike;
    let day = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    let today = now.date_naive();
    params.not_before = day(today - chrono::Duration::days(1));
    params.not_after = day(today + chrono::Duration::days(days));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_cover_every_way_to_address_the_service() {
        assert_eq!(
            service_names("fluxgate", "fluxgate-system"),
            [
                "fluxgate",
                "fluxgate.fluxgate-system",
                "fluxgate.fluxgate-system.svc",
                "fluxgate.fluxgate-system.svc.cluster.local"
            ]
        );
    }
}
