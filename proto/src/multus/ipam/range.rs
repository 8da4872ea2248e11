//! What every plugin's reader shares: address fields read the way Go reads them (strictly, as
//! `net.ParseIP` / `net.ParseCIDR`, or sloppily, as `k8s.io/utils/net` `ParseIPSloppy` /
//! `ParseCIDRSloppy`), a range's report (first and last address handed out, usable count) and
//! counts saturated into a `u64`.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::Value;

use crate::cidr::{AddrRange, Cidr, Family, from_u128, parse_ip, to_u128};
use crate::field::{OwnedPath, Problems};

use super::RangeReport;

pub(super) fn saturate(n: u128) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

/// An address field read as Go's `net.IP` JSON decoding reads it (`net.ParseIP`: no leading
/// zeros): `None` when absent, an error naming the field when it is not a string or not an IP
/// (the plugin then refuses the whole config).
pub(super) fn strict_ip_field(
    path: &OwnedPath,
    value: Option<&Value>,
    problems: &mut Problems,
) -> Option<u128> {
    let text = path.at(value?).string(problems)?;
    if text.is_empty() {
        // Go decodes "" into a nil net.IP: the same as leaving the key out.
        return None;
    }
    match parse_ip(text) {
        Some(ip) => Some(to_u128(ip)),
        None => {
            let hint = if parse_ip_sloppy(text).is_some() {
                " (octets with leading zeros are refused here: Go's net.ParseIP)"
            } else {
                ""
            };
            problems.error(
                path.as_str(),
                format!("{text:?} is not an IP address{hint}"),
            );
            None
        }
    }
}

/// An IP address as `k8s.io/utils/net.ParseIPSloppy` reads it: like Go's `net.ParseIP`, but
/// IPv4 octets may carry leading zeros, read as decimal (`010` is 10, not 8). Also in the IPv4
/// tail of an IPv6 address.
pub(super) fn parse_ip_sloppy(text: &str) -> Option<IpAddr> {
    if let Some(ip) = parse_ip(text) {
        return Some(ip);
    }
    if let Some(v4) = sloppy_v4(text) {
        return Some(IpAddr::V4(v4));
    }
    // An IPv6 address whose last part is a dotted quad: normalise the quad and retry.
    let (head, tail) = text.rsplit_once(':')?;
    let v4 = sloppy_v4(tail)?;
    parse_ip(&format!("{head}:{v4}"))
}

fn sloppy_v4(text: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = text.split('.');
    for octet in &mut octets {
        let part = parts.next()?;
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits = part.trim_start_matches('0');
        *octet = if digits.is_empty() {
            0
        } else if digits.len() > 3 {
            return None;
        } else {
            u8::try_from(digits.parse::<u16>().ok()?).ok()?
        };
    }
    parts.next().is_none().then(|| Ipv4Addr::from(octets))
}

/// A CIDR as `k8s.io/utils/net.ParseCIDRSloppy` reads it (leading zeros allowed in IPv4
/// octets); `Ok((cidr, sloppy))` where `sloppy` says leading zeros were read.
pub(super) fn parse_cidr_sloppy(text: &str) -> Result<(Cidr, bool), crate::cidr::CidrError> {
    match text.parse::<Cidr>() {
        Ok(c) => Ok((c, false)),
        Err(strict) => {
            let (addr, prefix) = text.split_once('/').ok_or(strict.clone())?;
            let ip = parse_ip_sloppy(addr).ok_or(strict)?;
            format!("{ip}/{prefix}").parse::<Cidr>().map(|c| (c, true))
        }
    }
}

/// The warning for an address whereabouts reads with leading zeros.
pub(super) fn leading_zeros_warning(text: &str, read_as: &str) -> String {
    format!(
        "{text:?} has IPv4 octets with leading zeros: whereabouts reads them as decimal \
         ({read_as}; k8s.io/utils/net ParseIPSloppy), but most other tools refuse them or read \
         them as octal; write {read_as}"
    )
}

/// First and last address of `range` not in `excluded` (inclusive ranges of any family;
/// others are ignored); `None` when every address is excluded.
pub(super) fn first_last_free(range: AddrRange, excluded: &[AddrRange]) -> Option<(u128, u128)> {
    if range.is_empty() {
        return None;
    }
    let hit = |a: u128| {
        excluded
            .iter()
            .filter(|e| e.family == range.family && !e.is_empty())
            .find(|e| (e.start..=e.end).contains(&a))
    };
    let mut first = range.start;
    while let Some(e) = hit(first) {
        if e.end >= range.end {
            return None;
        }
        first = e.end + 1;
    }
    let mut last = range.end;
    while let Some(e) = hit(last) {
        // `first` is free, so an exclusion holding `last` starts above it.
        last = e.start - 1;
    }
    Some((first, last))
}

/// A range's report: `first`/`last` are the first and last address handed out (absent when
/// nothing is), `usable` how many are.
pub(super) fn range_report(cidr: Cidr, bounds: Option<(u128, u128)>, usable: u128) -> RangeReport {
    let family: Family = cidr.family();
    let bounds = bounds.filter(|_| usable > 0);
    RangeReport {
        cidr: cidr.network().to_string(),
        family,
        first: bounds.map(|(f, _)| from_u128(family, f).to_string()),
        last: bounds.map(|(_, l)| from_u128(family, l).to_string()),
        usable: saturate(usable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sloppy_parsing_reads_leading_zeros_as_decimal() {
        // k8s.io/utils/net ParseIPSloppy: Go's pre-1.17 net.ParseIP, where "010" is ten.
        let cases = [
            ("192.168.001.010", Some("192.168.1.10")),
            ("1.2.3.4", Some("1.2.3.4")),
            ("0000.0.0.1", Some("0.0.0.1")),
            ("1.2.3.256", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("::ffff:1.2.3.04", Some("::ffff:1.2.3.4")),
            ("fd00::1", Some("fd00::1")),
            ("a.b.c.d", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_ip_sloppy(text).map(|ip| ip.to_string()).as_deref(),
                want,
                "{text}"
            );
        }
        let (cidr, sloppy) = parse_cidr_sloppy("192.168.001.0/24").expect("sloppy CIDR");
        assert_eq!(
            (cidr.to_string().as_str(), sloppy),
            ("192.168.1.0/24", true)
        );
        assert!(!parse_cidr_sloppy("192.168.1.0/24").expect("CIDR").1);
        assert!(parse_cidr_sloppy("192.168.1.0").is_err());
    }

    #[test]
    fn first_and_last_free_skip_exclusions() {
        let r = |start, end| AddrRange {
            family: Family::V4,
            start,
            end,
        };
        assert_eq!(first_last_free(r(1, 10), &[]), Some((1, 10)));
        assert_eq!(
            first_last_free(r(1, 10), &[r(0, 3), r(4, 4), r(9, 20)]),
            Some((5, 8))
        );
        assert_eq!(first_last_free(r(1, 10), &[r(0, 5), r(6, 10)]), None);
        assert_eq!(first_last_free(r(5, 4), &[]), None);
    }
}
