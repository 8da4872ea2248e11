//! CIDRs and the address arithmetic IPAM capacity needs, IPv4 and IPv6 alike.
//!
//! Addresses are handled as `u128` with their family beside them, so one set of range
//! operations serves both families. Parsing follows Go's `net.ParseCIDR` (what Rook and the CNI
//! plugins use): the address may have host bits set (`10.1.2.3/24` is accepted and means the
//! network `10.1.2.0/24`), and an IPv6 address may embed an IPv4 one (`2000::1.2.3.4/96`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::Serialize;

/// IPv4 or IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Family {
    /// 32-bit addresses.
    #[serde(rename = "IPv4")]
    V4,
    /// 128-bit addresses.
    #[serde(rename = "IPv6")]
    V6,
}

impl Family {
    /// Of an address.
    pub fn of(addr: IpAddr) -> Self {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Address width in bits.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        })
    }
}

/// An address as a number.
pub fn to_u128(addr: IpAddr) -> u128 {
    match addr {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// A number as an address of `family` (truncated to the family's width).
pub fn from_u128(family: Family, value: u128) -> IpAddr {
    match family {
        // Truncation is the intent: callers stay within the family's range.
        Family::V4 => IpAddr::V4(Ipv4Addr::from(value as u32)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(value)),
    }
}

/// Why a CIDR did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CidrError {
    /// No `/prefix` part.
    #[error("{0:?} is not a CIDR: expected ADDRESS/PREFIX such as 192.168.0.0/24 or fd00::/64")]
    MissingPrefix(String),
    /// The address part does not parse.
    #[error("{0:?} is not a CIDR: {1:?} is not an IPv4 or IPv6 address")]
    BadAddress(String, String),
    /// The prefix is not a number within the family's width.
    #[error("{0:?} is not a CIDR: prefix length {1:?} must be a number from 0 to {2}")]
    BadPrefix(String, String, u8),
}

/// An IP network as written, e.g. `192.168.20.0/24`, `fd00:10::/64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address as written (host bits may be set).
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
}

impl Cidr {
    /// The address family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }

    /// The mask of host bits (`0xff` for a /24).
    fn host_mask(&self) -> u128 {
        let host_bits = u32::from(self.family().bits() - self.prefix);
        if host_bits >= 128 {
            u128::MAX
        } else {
            (1u128 << host_bits) - 1
        }
    }

    /// The first address of the network, as a number.
    pub fn first(&self) -> u128 {
        to_u128(self.addr) & !self.host_mask()
    }

    /// The last address of the network (the broadcast address for IPv4), as a number.
    pub fn last(&self) -> u128 {
        self.first() | self.host_mask()
    }

    /// The network with host bits cleared (`10.1.2.3/24` → `10.1.2.0/24`).
    pub fn network(&self) -> Cidr {
        Cidr {
            addr: from_u128(self.family(), self.first()),
            prefix: self.prefix,
        }
    }

    /// Whether `addr` lies in this network.
    pub fn contains(&self, addr: IpAddr) -> bool {
        Family::of(addr) == self.family() && (self.first()..=self.last()).contains(&to_u128(addr))
    }

    /// Number of addresses in the network, saturating at `u128::MAX` (only for `::/0`).
    pub fn size(&self) -> u128 {
        self.host_mask().saturating_add(1)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = CidrError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr_text, prefix_text) = text
            .split_once('/')
            .ok_or_else(|| CidrError::MissingPrefix(text.to_string()))?;
        let addr = parse_ip(addr_text)
            .ok_or_else(|| CidrError::BadAddress(text.to_string(), addr_text.to_string()))?;
        let max = Family::of(addr).bits();
        let prefix = parse_prefix(prefix_text, max)
            .ok_or_else(|| CidrError::BadPrefix(text.to_string(), prefix_text.to_string(), max))?;
        Ok(Cidr { addr, prefix })
    }
}

/// An IP address in the textual forms Go's `net.ParseIP` accepts (no zone, no brackets).
pub fn parse_ip(text: &str) -> Option<IpAddr> {
    if text.contains('%') {
        return None;
    }
    IpAddr::from_str(text).ok()
}

/// Decimal digits only (no sign, no spaces), at most `max`. Go accepts leading zeros here.
fn parse_prefix(text: &str, max: u8) -> Option<u8> {
    if text.is_empty() || text.len() > 3 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse::<u8>().ok().filter(|p| *p <= max)
}

/// An inclusive range of addresses of one family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddrRange {
    /// Family of both ends.
    pub family: Family,
    /// First address, as a number.
    pub start: u128,
    /// Last address, as a number; `end >= start` unless the range is empty.
    pub end: u128,
}

impl AddrRange {
    /// Number of addresses, saturating.
    pub fn len(&self) -> u128 {
        if self.end < self.start {
            0
        } else {
            (self.end - self.start).saturating_add(1)
        }
    }

    /// True when the range holds no address.
    pub fn is_empty(&self) -> bool {
        self.end < self.start
    }

    /// The first address.
    pub fn start_addr(&self) -> IpAddr {
        from_u128(self.family, self.start)
    }

    /// The last address.
    pub fn end_addr(&self) -> IpAddr {
        from_u128(self.family, self.end)
    }
}

/// Counts the addresses of `range` that are in none of `excluded` (same-family inclusive ranges;
/// they may overlap each other) and are not rejected by `skip_zero_octet` (IPv4 addresses whose
/// last octet is 0, which whereabouts never hands out).
pub fn count_usable(range: AddrRange, excluded: &[AddrRange], skip_zero_octet: bool) -> u128 {
    if range.is_empty() {
        return 0;
    }
    // Merge the exclusions that meet the range into sorted, disjoint pieces clipped to it.
    let mut pieces: Vec<(u128, u128)> = excluded
        .iter()
        .filter(|e| e.family == range.family && !e.is_empty())
        .filter(|e| e.start <= range.end && e.end >= range.start)
        .map(|e| (e.start.max(range.start), e.end.min(range.end)))
        .collect();
    pieces.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::with_capacity(pieces.len());
    for (s, e) in pieces {
        match merged.last_mut() {
            Some((_, last_end)) if s <= last_end.saturating_add(1) => {
                *last_end = (*last_end).max(e)
            }
            _ => merged.push((s, e)),
        }
    }
    // Walk the gaps between exclusions; count each gap's addresses.
    let skip = skip_zero_octet && range.family == Family::V4;
    let mut total: u128 = 0;
    let mut cursor = range.start;
    let mut count_gap = |s: u128, e: u128| {
        let mut n = e - s + 1;
        if skip {
            n -= zero_octets_in(s, e);
        }
        total = total.saturating_add(n);
    };
    for (s, e) in merged {
        if s > cursor {
            count_gap(cursor, s - 1);
        }
        if e == u128::MAX {
            return total;
        }
        cursor = e + 1;
    }
    if cursor <= range.end {
        count_gap(cursor, range.end);
    }
    total
}

/// Numbers in `[s, e]` divisible by 256 (IPv4 addresses ending in `.0`).
fn zero_octets_in(s: u128, e: u128) -> u128 {
    let upto = |x: u128| x / 256 + 1; // multiples of 256 in [0, x]
    upto(e) - if s == 0 { 0 } else { upto(s - 1) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cidr(text: &str) -> Cidr {
        text.parse().expect("valid CIDR in test")
    }

    #[test]
    fn parses_like_go() {
        for ok in [
            "123.123.123.123/24",
            "2000::/64",
            "2000::128.128.128.128/96",
            "0.0.0.0/0",
            "::/0",
            "10.0.0.0/032",
        ] {
            assert!(ok.parse::<Cidr>().is_ok(), "{ok} should parse");
        }
        for bad in [
            "123.123.123/24",
            "/33",
            "2000/64",
            "2000:/64",
            "/129",
            "1.2.3.4/33",
            "::/129",
            "1.2.3.4",
            "1.2.3.4/",
            "1.2.3.4/-1",
            "1.2.3.4/ 8",
            "fe80::1%eth0/64",
            "1.2.3.4/24/1",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad} should not parse");
        }
    }

    #[test]
    fn network_arithmetic() {
        let c = cidr("192.168.20.77/24");
        assert_eq!(c.network().to_string(), "192.168.20.0/24");
        assert_eq!(
            from_u128(Family::V4, c.last()).to_string(),
            "192.168.20.255"
        );
        assert_eq!(c.size(), 256);
        assert!(c.contains("192.168.20.1".parse().expect("ip")));
        assert!(!c.contains("192.168.21.1".parse().expect("ip")));
        assert_eq!(cidr("::/0").size(), u128::MAX);
        assert_eq!(cidr("fd00::/120").size(), 256);
    }

    #[test]
    fn counting_with_exclusions_and_zero_octets() {
        let r = AddrRange {
            family: Family::V4,
            start: 0x0a00_0001,
            end: 0x0a00_02fe,
        };
        // 10.0.0.1 .. 10.0.2.254 = 766 addresses, two of which (10.0.1.0, 10.0.2.0) end in .0
        assert_eq!(count_usable(r, &[], false), 766);
        assert_eq!(count_usable(r, &[], true), 764);
        let ex = [
            AddrRange {
                family: Family::V4,
                start: 0x0a00_0000,
                end: 0x0a00_00ff,
            },
            AddrRange {
                family: Family::V4,
                start: 0x0a00_0080,
                end: 0x0a00_0100,
            },
        ];
        assert_eq!(count_usable(r, &ex, true), 766 - 256 - 1);
    }

    proptest! {
        /// The closed-form count equals walking every address, for small IPv4 and IPv6 ranges.
        #[test]
        fn count_matches_brute_force(
            v6 in any::<bool>(),
            base in 0u128..4096,
            len in 0u128..700,
            excl in proptest::collection::vec((0u128..5000, 0u128..300), 0..5),
            skip in any::<bool>(),
        ) {
            let family = if v6 { Family::V6 } else { Family::V4 };
            let offset = if v6 { 0xfd00_u128 << 112 } else { 0xc612_0000 };
            let range = AddrRange { family, start: offset + base, end: offset + base + len - len.min(1) };
            let range = if len == 0 { AddrRange { end: range.start - 1, ..range } } else { range };
            let excluded: Vec<AddrRange> = excl.iter().map(|(s, l)| AddrRange { family, start: offset + s, end: offset + s + l }).collect();
            let brute = (range.start..=range.end.max(range.start))
                .filter(|_| !range.is_empty())
                .filter(|a| !excluded.iter().any(|e| (e.start..=e.end).contains(a)))
                .filter(|a| !(skip && family == Family::V4 && a % 256 == 0))
                .count() as u128;
            prop_assert_eq!(count_usable(range, &excluded, skip), brute);
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn parse_never_panics(text in ".{0,40}") {
            let _ = text.parse::<Cidr>();
        }
    }
}
