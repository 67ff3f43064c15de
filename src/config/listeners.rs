//! `listeners`, `process.roles` and `controller.quorum.voters`: the values with a grammar of
//! their own. Errors are messages; the caller names the key and where it was given.

use std::collections::BTreeMap;
use std::net::SocketAddr;

/// Default controller port: the Kafka port plus this (9093 for 9092).
pub const CONTROLLER_PORT_OFFSET: u16 = 1;
/// Default admin HTTP port: the Kafka port plus this (9644 for 9092).
pub const ADMIN_PORT_OFFSET: u16 = 552;

/// The address of the first listener, without a `PLAINTEXT://` scheme.
pub fn strip_scheme(value: &str) -> Result<&str, String> {
    let first = value.split(',').next().unwrap_or_default().trim();
    match first.split_once("://") {
        None => Ok(first),
        Some(("PLAINTEXT", rest)) => Ok(rest),
        Some((scheme, _)) => Err(format!(
            "listener security protocol {scheme} is not supported; use PLAINTEXT"
        )),
    }
}

/// The Kafka (PLAINTEXT), controller (CONTROLLER) and admin HTTP (ADMIN) listeners of
/// `listeners`. A bare host:port is the Kafka listener. The others default to the Kafka
/// listener's host and its port plus [`CONTROLLER_PORT_OFFSET`] and [`ADMIN_PORT_OFFSET`], so
/// that moving the Kafka port moves the whole set (port 0 for all when the Kafka port is 0,
/// so that tests on ephemeral ports never collide).
pub fn parse_listeners(text: &str) -> Result<(SocketAddr, SocketAddr, SocketAddr), String> {
    let mut kafka = None;
    let mut controller = None;
    let mut admin = None;
    for entry in text.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (scheme, address) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let slot = match scheme {
            "PLAINTEXT" => &mut kafka,
            "CONTROLLER" => &mut controller,
            "ADMIN" => &mut admin,
            other => {
                return Err(format!(
                    "listener security protocol {other} is not supported; use PLAINTEXT (and CONTROLLER, ADMIN)"
                ));
            }
        };
        let addr: SocketAddr = address
            .parse()
            .map_err(|e| format!("'{address}' is not host:port with an IP host: {e}"))?;
        if slot.replace(addr).is_some() {
            return Err(format!("two {scheme} listeners"));
        }
    }
    let kafka = kafka.ok_or_else(|| format!("'{text}' has no PLAINTEXT listener"))?;
    let beside = |name: &str, offset: u16| -> Result<SocketAddr, String> {
        if kafka.port() == 0 {
            return Ok(SocketAddr::new(kafka.ip(), 0));
        }
        let port = kafka.port().checked_add(offset).ok_or_else(|| {
            format!(
                "the {name} listener defaults to port {} + {offset}, past 65535: give it with {name}://host:port",
                kafka.port()
            )
        })?;
        Ok(SocketAddr::new(kafka.ip(), port))
    };
    let controller = match controller {
        Some(addr) => addr,
        None => beside("CONTROLLER", CONTROLLER_PORT_OFFSET)?,
    };
    let admin = match admin {
        Some(addr) => addr,
        None => beside("ADMIN", ADMIN_PORT_OFFSET)?,
    };
    let ports = [kafka, controller, admin];
    for (n, a) in ports.iter().enumerate() {
        if a.port() != 0 && ports[n + 1..].iter().any(|b| b == a) {
            return Err(format!("two listeners on {a}"));
        }
    }
    Ok((kafka, controller, admin))
}

/// `process.roles`: (broker, controller).
pub fn parse_roles(text: &str) -> Result<(bool, bool), String> {
    let (mut broker, mut controller) = (false, false);
    for role in text.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        match role {
            "broker" => broker = true,
            "controller" => controller = true,
            other => {
                return Err(format!(
                    "'{other}' is not a role; use broker, controller or both"
                ));
            }
        }
    }
    if !broker && !controller {
        return Err("no role given; use broker, controller or both".into());
    }
    Ok((broker, controller))
}

/// `id@host:port` voter specs, comma-separated.
pub fn parse_voters(text: &str) -> Result<BTreeMap<u64, String>, String> {
    let mut voters = BTreeMap::new();
    for spec in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (id, addr) = spec
            .split_once('@')
            .ok_or_else(|| format!("voter '{spec}' is not id@host:port"))?;
        let id: u64 = id
            .parse()
            .map_err(|_| format!("voter '{spec}': '{id}' is not a node id"))?;
        if !addr.contains(':') {
            return Err(format!("voter '{spec}': '{addr}' is not host:port"));
        }
        if voters.insert(id, addr.to_owned()).is_some() {
            return Err(format!("voter {id} is listed twice"));
        }
    }
    Ok(voters)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moving_the_kafka_port_moves_the_whole_set() {
        let (kafka, controller, admin) = parse_listeners("127.0.0.1:59092").unwrap();
        assert_eq!(kafka.port(), 59092);
        assert_eq!(controller.port(), 59093);
        assert_eq!(admin.port(), 59644);
        let (_, controller, admin) = parse_listeners("PLAINTEXT://127.0.0.1:9092").unwrap();
        assert_eq!((controller.port(), admin.port()), (9093, 9644));
        let (_, controller, admin) = parse_listeners("127.0.0.1:0").unwrap();
        assert_eq!((controller.port(), admin.port()), (0, 0));
        let (_, controller, admin) =
            parse_listeners("127.0.0.1:9192,CONTROLLER://127.0.0.1:9193,ADMIN://127.0.0.1:9744")
                .unwrap();
        assert_eq!((controller.port(), admin.port()), (9193, 9744));
        assert!(
            parse_listeners("127.0.0.1:65500")
                .unwrap_err()
                .contains("ADMIN")
        );
        assert!(
            parse_listeners("127.0.0.1:9092,ADMIN://127.0.0.1:9093")
                .unwrap_err()
                .contains("two listeners")
        );
    }
}
