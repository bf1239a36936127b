//! Value parsers for the flags whose text has a grammar of its own: `--stages`, `--bind` and `-H`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::config::Stage;
use crate::units::parse_duration;

/// Parses `--stages 100:30s,500:30s,1000:1m`: target concurrent streams and hold time per stage.
pub fn parse_stages(s: &str) -> Result<Vec<Stage>, String> {
    let mut stages = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((streams, hold)) = item.split_once(':') else {
            return Err(format!("stage '{item}': expected STREAMS:HOLD, e.g. 100:30s"));
        };
        let streams: usize =
            streams.trim().parse().map_err(|_| format!("stage '{item}': '{streams}' is not a stream count"))?;
        let hold = parse_duration(hold).map_err(|e| format!("stage '{item}': {e}"))?;
        if hold.is_zero() {
            return Err(format!("stage '{item}': the hold time must be positive"));
        }
        stages.push(Stage { streams, hold });
    }
    if stages.is_empty() {
        return Err("expected at least one stage, e.g. 100:30s,500:30s".into());
    }
    if stages.iter().all(|s| s.streams == 0) {
        return Err(format!("'{s}': every stage has 0 streams"));
    }
    Ok(stages)
}

/// Most source addresses one `--bind` may expand to.
pub const MAX_BIND_ADDRS: usize = 65_536;

/// Parses `--bind`: comma-separated addresses, ranges `A-B` and CIDR blocks `A/N` (IPv4 blocks
/// of /30 and wider leave out their network and broadcast addresses).
pub fn parse_bind_list(s: &str) -> Result<Vec<IpAddr>, String> {
    let mut out = Vec::new();
    for item in s.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (first, last, v4) = bind_item_bounds(item)?;
        let room = (MAX_BIND_ADDRS - out.len()) as u128;
        let count = last.checked_sub(first).and_then(|d| d.checked_add(1)).filter(|&n| n <= room);
        let Some(count) = count else {
            return Err(format!("--bind {item}: an empty range, or more than {MAX_BIND_ADDRS} addresses in all"));
        };
        for n in 0..count {
            let value = first + n;
            out.push(if v4 { IpAddr::V4(Ipv4Addr::from(value as u32)) } else { IpAddr::V6(Ipv6Addr::from(value)) });
        }
    }
    if out.is_empty() {
        return Err("--bind needs at least one address".into());
    }
    Ok(out)
}

/// The first and last address of one `--bind` item, as integers, and whether they are IPv4.
fn bind_item_bounds(item: &str) -> Result<(u128, u128, bool), String> {
    let parse = |a: &str| -> Result<(u128, bool), String> {
        match a.trim().parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => Ok((u128::from(u32::from(v4)), true)),
            Ok(IpAddr::V6(v6)) => Ok((u128::from(v6), false)),
            Err(_) => Err(format!("--bind: '{a}' is not an IP address")),
        }
    };
    if let Some((addr, prefix)) = item.split_once('/') {
        let (base, v4) = parse(addr)?;
        let bits = if v4 { 32 } else { 128 };
        let prefix: u32 =
            prefix.parse().ok().filter(|&p| p <= bits).ok_or(format!("--bind {item}: bad prefix length"))?;
        let host_bits = bits - prefix;
        let size = 1u128.checked_shl(host_bits).unwrap_or(0);
        let first = if host_bits == 128 { 0 } else { base >> host_bits << host_bits };
        let last = first.wrapping_add(size.wrapping_sub(1));
        return Ok(if v4 && host_bits >= 2 { (first + 1, last - 1, v4) } else { (first, last, v4) });
    }
    if let Some((a, b)) = item.split_once('-') {
        let ((a, a4), (b, b4)) = (parse(a)?, parse(b)?);
        if a4 != b4 {
            return Err(format!("--bind {item}: both ends must be IPv4 or both IPv6"));
        }
        return Ok((a, b, a4));
    }
    let (a, v4) = parse(item)?;
    Ok((a, a, v4))
}

/// Parses `Name: value`, refusing bytes that would break the request framing.
pub fn parse_header(s: &str) -> Result<(String, String), String> {
    let (name, value) = s.split_once(':').ok_or_else(|| format!("header '{s}' has no ':' (use 'Name: value')"))?;
    let name = name.trim();
    let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(is_token) {
        return Err(format!("header name '{name}' is not a valid HTTP token"));
    }
    let value = value.trim();
    if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
        return Err(format!("header '{name}' has CR, LF or NUL in its value"));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stages() {
        let s = Duration::from_secs;
        assert_eq!(
            parse_stages("100:30s, 500:1m,0:5s"),
            Ok(vec![
                Stage { streams: 100, hold: s(30) },
                Stage { streams: 500, hold: s(60) },
                Stage { streams: 0, hold: s(5) }
            ])
        );
        for bad in ["", "100", "100:0s", "x:1s", "100:fast", "0:1s,0:2s", "-5:1s"] {
            let err = parse_stages(bad).unwrap_err();
            assert!(err.contains(bad) || bad.is_empty() || bad == "-5:1s", "{bad}: {err}");
        }
    }

    #[test]
    fn headers() {
        assert_eq!(parse_header("X-Id:  42 "), Ok(("X-Id".into(), "42".into())));
        assert_eq!(parse_header("Authorization: Bearer a:b"), Ok(("Authorization".into(), "Bearer a:b".into())));
        assert!(parse_header("NoColon").is_err());
        assert!(parse_header("Bad Name: x").is_err());
        assert!(parse_header("X: a\r\nInjected: 1").is_err());
    }

    #[test]
    fn bind_lists() {
        let v4 = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(parse_bind_list("127.0.0.1"), Ok(vec![v4("127.0.0.1")]));
        assert_eq!(parse_bind_list("127.0.0.1, 127.0.0.9"), Ok(vec![v4("127.0.0.1"), v4("127.0.0.9")]));
        assert_eq!(parse_bind_list("127.0.0.254-127.0.1.1").unwrap().len(), 4);
        let block = parse_bind_list("127.0.0.0/28").unwrap();
        assert_eq!((block.len(), block[0], block[13]), (14, v4("127.0.0.1"), v4("127.0.0.14")));
        assert_eq!(parse_bind_list("10.1.2.3/32"), Ok(vec![v4("10.1.2.3")]));
        assert_eq!(parse_bind_list("127.0.0.1 - 127.0.0.2"), Ok(vec![v4("127.0.0.1"), v4("127.0.0.2")]));
        assert_eq!(parse_bind_list(" 10.0.0.0 /30").unwrap()[0], v4("10.0.0.1"));
        assert_eq!(parse_bind_list("::1"), Ok(vec![v4("::1")]));
        assert_eq!(parse_bind_list("fd00::/126").unwrap().len(), 4);
        for bad in ["", "x", "127.0.0.9-127.0.0.1", "127.0.0.1-::1", "10.0.0.0/33", "10.0.0.0/8", "::/64"] {
            assert!(parse_bind_list(bad).is_err(), "{bad}");
        }
    }
}
