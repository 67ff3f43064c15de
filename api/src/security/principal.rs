//! Principals: `User:alice`, and the name a client certificate gives (`ssl.principal.mapping.rules`).

use std::fmt;

use x509_parser::der_parser::asn1_rs::ToDer;
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// Who a request is made as, in Kafka's `Type:name` form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KafkaPrincipal {
    /// The type; Kafka's built-in authenticators only make `User`.
    pub kind: String,
    /// The name.
    pub name: String,
}

impl KafkaPrincipal {
    /// A user principal.
    pub fn user(name: impl Into<String>) -> Self {
        Self {
            kind: "User".into(),
            name: name.into(),
        }
    }

    /// Kafka's `User:ANONYMOUS`: PLAINTEXT connections and TLS ones without a client certificate.
    pub fn anonymous() -> Self {
        Self::user("ANONYMOUS")
    }

    /// Parses `Type:name`, as principals appear in `super.users` and ACLs.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            Some((kind, name)) if !kind.is_empty() => Ok(Self {
                kind: kind.into(),
                name: name.into(),
            }),
            _ => Err(format!(
                "'{text}' is not a principal of the form Type:name (User:alice)"
            )),
        }
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

/// The subject of a DER certificate as RFC 2253 writes it, as Java's
/// `X500Principal.getName()` does: the last RDN first, no spaces (`CN=writer,O=Acme`).
pub fn subject_dn(der: &[u8]) -> Result<String, String> {
    let (_, cert) = X509Certificate::from_der(der).map_err(|e| format!("bad certificate: {e}"))?;
    Ok(rfc2253(cert.subject()))
}

fn rfc2253(name: &X509Name<'_>) -> String {
    let rdns: Vec<String> = name
        .iter()
        .map(|rdn| rdn.iter().map(attribute).collect::<Vec<_>>().join("+"))
        .collect();
    rdns.into_iter().rev().collect::<Vec<_>>().join(",")
}

fn attribute(atv: &AttributeTypeAndValue<'_>) -> String {
    // The keywords RFC 2253 and Java know; other types are written as dotted OIDs.
    let oid = atv.attr_type().to_id_string();
    let key = match oid.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        other => other,
    };
    let value = match atv.as_str() {
        Ok(text) => escape(text),
        // Values that are not strings are written as `#` and their DER in hex, as RFC 2253 says.
        Err(_) => {
            let hex: String = atv
                .attr_value()
                .to_der_vec()
                .map(|der| der.iter().map(|b| format!("{b:02x}")).collect())
                .unwrap_or_default();
            format!("#{hex}")
        }
    };
    format!("{key}={value}")
}

fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// One of `ssl.principal.mapping.rules`.
#[derive(Debug, Clone)]
enum Rule {
    /// The distinguished name as it is.
    Default,
    /// `RULE:pattern/replacement/[LU]`: when the whole name matches, the replacement.
    Replace {
        pattern: regex::Regex,
        replacement: String,
        case: Option<char>,
    },
}

/// `ssl.principal.mapping.rules`: turns a certificate's subject into a user name, with
/// Kafka's rule syntax and order (the first rule that matches wins).
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
}

impl Default for PrincipalMapper {
    fn default() -> Self {
        Self {
            rules: vec![Rule::Default],
        }
    }
}

impl PrincipalMapper {
    /// Parses the rules: `DEFAULT` and `RULE:pattern/replacement/[LU]`, separated by commas
    /// or newlines; a `/` inside a pattern or replacement is written `\/`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut rules = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix("DEFAULT") {
                rules.push(Rule::Default);
                rest = after;
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after).ok_or_else(|| {
                    format!("rule '{rest}' has no replacement: RULE:pattern/replacement/")
                })?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| format!("rule '{rest}' does not end with '/' (or /L, /U)"))?;
                let (case, after) = match after.chars().next() {
                    Some(c @ ('L' | 'U')) => (Some(c), &after[1..]),
                    _ => (None, after),
                };
                let anchored = format!("^(?:{pattern})$");
                let pattern = regex::Regex::new(&anchored)
                    .map_err(|e| format!("rule pattern '{pattern}' is not a regex: {e}"))?;
                rules.push(Rule::Replace {
                    pattern,
                    replacement: java_replacement(&replacement),
                    case,
                });
                rest = after;
            } else {
                return Err(format!(
                    "'{rest}' is not a rule; use DEFAULT or RULE:pattern/replacement/[LU]"
                ));
            }
            rest = rest.trim_start();
            rest = rest
                .strip_prefix(',')
                .or_else(|| rest.strip_prefix('\n'))
                .unwrap_or(rest)
                .trim_start();
        }
        if rules.is_empty() {
            rules.push(Rule::Default);
        }
        Ok(Self { rules })
    }

    /// The user name of a subject, or an error when no rule matches (Kafka refuses the client).
    pub fn name(&self, dn: &str) -> Result<String, String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_owned()),
                Rule::Replace {
                    pattern,
                    replacement,
                    case,
                } => {
                    if pattern.is_match(dn) {
                        let name = pattern.replace(dn, replacement.as_str()).into_owned();
                        return Ok(match case {
                            Some('L') => name.to_lowercase(),
                            Some('U') => name.to_uppercase(),
                            _ => name,
                        });
                    }
                }
            }
        }
        Err(format!(
            "no ssl.principal.mapping.rules rule matches '{dn}'"
        ))
    }
}

/// The text up to the next unescaped `/` (with `\/` unescaped) and what follows that slash.
fn until_slash(text: &str) -> Option<(String, &str)> {
    let mut out = String::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, '/')) => out.push('/'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => out.push('\\'),
            },
            '/' => return Some((out, &text[i + 1..])),
            c => out.push(c),
        }
    }
    None
}

/// Java's `$1` group references, written so the regex crate reads them the same way (`${1}`:
/// it would take `$1x` as a group named `1x`).
fn java_replacement(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
            let mut digits = String::new();
            while let Some(d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                digits.push(*d);
                chars.next();
            }
            out.push_str(&format!("${{{digits}}}"));
        } else if c == '$' {
            out.push_str("$$");
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_follow_kafka() {
        // Examples from Kafka's documentation and SslPrincipalMapperTest.
        let mapper = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,RULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L,DEFAULT",
        )
        .unwrap();
        assert_eq!(
            mapper
                .name("CN=kafka-server1,OU=ServiceUsers,O=Acme")
                .unwrap(),
            "kafka-server1"
        );
        assert_eq!(
            mapper
                .name("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US")
                .unwrap(),
            "duke@javasoft"
        );
        assert_eq!(mapper.name("CN=x,O=y").unwrap(), "CN=x,O=y");
        let upper = PrincipalMapper::parse("RULE:^CN=([^,]*).*$/$1x/U").unwrap();
        assert_eq!(upper.name("CN=writer,O=Acme").unwrap(), "WRITERX");
        let slash = PrincipalMapper::parse(r"RULE:^CN=(.*)$/svc\/$1/").unwrap();
        assert_eq!(slash.name("CN=a").unwrap(), "svc/a");
        let only = PrincipalMapper::parse("RULE:^CN=admin$/admin/").unwrap();
        assert!(only.name("CN=other").is_err());
        assert!(PrincipalMapper::parse("RULE:abc").is_err());
        assert!(PrincipalMapper::parse("SOMETHING").is_err());
        assert_eq!(
            PrincipalMapper::parse("").unwrap().name("CN=a").unwrap(),
            "CN=a"
        );
    }

    #[test]
    fn values_are_escaped_as_rfc2253_says() {
        assert_eq!(escape("a,b"), r"a\,b");
        assert_eq!(escape(" lead"), r"\ lead");
        assert_eq!(escape("#x"), r"\#x");
        assert_eq!(escape("trail "), r"trail\ ");
        assert_eq!(escape("plain"), "plain");
    }

    #[test]
    fn principals_parse() {
        assert_eq!(
            KafkaPrincipal::parse("User:CN=a,O=b").unwrap(),
            KafkaPrincipal::user("CN=a,O=b")
        );
        assert!(KafkaPrincipal::parse("alice").is_err());
        assert_eq!(KafkaPrincipal::anonymous().to_string(), "User:ANONYMOUS");
    }
}
