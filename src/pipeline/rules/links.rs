//! Links: found in the original text (with or without a scheme), checked
//! against counts, domain lists (subdomains included) and known shorteners.

use std::sync::LazyLock;

use regex::Regex;

use crate::domain::{RuleKind, Span};

/// Hosts that hide where a link goes.
const SHORTENERS: &[&str] = &[
    "bit.ly",
    "bitly.com",
    "tinyurl.com",
    "goo.gl",
    "t.co",
    "ow.ly",
    "is.gd",
    "buff.ly",
    "rebrand.ly",
    "cutt.ly",
    "shorturl.at",
    "tiny.cc",
    "rb.gy",
    "t.ly",
    "s.id",
    "bit.do",
    "v.gd",
    "shorte.st",
    "adf.ly",
    "lnkd.in",
    "soo.gd",
    "clck.ru",
    "qr.ae",
    "tr.im",
    "x.co",
    "u.to",
    "short.io",
    "bl.ink",
];

/// `scheme://host…`, `www.host…`, or a bare `host.tld/…` with a common TLD.
/// Word boundaries are ASCII (`(?-u:\b)`), like host names.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?xi)
        (?: (?-u:\b)(?:https?|ftp)://[^\s<>()\[\]{}]+ )
      | (?: (?-u:\b)www\.[^\s<>()\[\]{}]+ )
      | (?: (?-u:\b)[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?
            (?:\.[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?)*
            \.(?:com|net|org|info|biz|xyz|top|online|site|club|shop|store|live|link|click|io|co|me|ly|gl|gd|cc|tk|ml|ga|cf|gq|ru|cn|fr|ci|sn|cm|bf|ne|tg|bj|cd|ma|dz|tn|be|ch|us|uk|de|es|nl|pro|app|dev|tv|ws|ai)
            (?:/[^\s<>()\[\]{}]*)?(?-u:\b) )
        ",
    )
    .expect("link pattern compiles")
});

#[derive(Debug, Clone)]
pub(crate) struct Link {
    pub span: Span,
    pub host: String,
}

pub(crate) fn find_links(text: &str) -> Vec<Link> {
    LINK.find_iter(text)
        .filter_map(|m| {
            let raw = m.as_str();
            let rest = raw.split_once("://").map(|(_, r)| r).unwrap_or(raw);
            let host = rest
                .split(['/', '?', '#', ':'])
                .next()
                .unwrap_or("")
                .trim_end_matches('.')
                .to_ascii_lowercase();
            let host = host
                .rsplit_once('@')
                .map(|(_, h)| h.to_owned())
                .unwrap_or(host);
            (!host.is_empty()).then(|| Link {
                span: Span {
                    start: m.start() as u32,
                    end: m.end() as u32,
                },
                host,
            })
        })
        .collect()
}

/// `host` belongs to a known link shortener.
pub(crate) fn is_shortener(host: &str) -> bool {
    SHORTENERS.iter().any(|d| within(host, d))
}

/// `host` is `domain` or one of its subdomains.
fn within(host: &str, domain: &str) -> bool {
    let domain = domain.trim_start_matches("www.");
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|rest| rest.ends_with('.'))
}

pub(super) struct LinksCheck {
    max_links: Option<u32>,
    deny: Vec<String>,
    allow: Vec<String>,
    shorteners: bool,
}

impl LinksCheck {
    pub(super) fn new(kind: &RuleKind) -> Self {
        let RuleKind::Links {
            max_links,
            deny_domains,
            allow_domains,
            shorteners,
        } = kind
        else {
            unreachable!("LinksCheck built from a links rule");
        };
        let lower = |v: &Vec<String>| v.iter().map(|d| d.to_ascii_lowercase()).collect();
        LinksCheck {
            max_links: *max_links,
            deny: lower(deny_domains),
            allow: lower(allow_domains),
            shorteners: *shorteners,
        }
    }

    pub(super) fn check(&self, links: &[Link], hit: &mut dyn FnMut(Option<Span>, String)) {
        if let Some(max) = self.max_links
            && links.len() > max as usize
        {
            hit(
                links.get(max as usize).map(|l| l.span),
                format!("{} links, more than {max}", links.len()),
            );
        }
        for link in links {
            if let Some(domain) = self.deny.iter().find(|d| within(&link.host, d)) {
                hit(
                    Some(link.span),
                    format!("link to \"{}\" (denied domain \"{domain}\")", link.host),
                );
            } else if !self.allow.is_empty() && !self.allow.iter().any(|d| within(&link.host, d)) {
                hit(
                    Some(link.span),
                    format!("link to \"{}\", which is not an allowed domain", link.host),
                );
            } else if self.shorteners && is_shortener(&link.host) {
                hit(
                    Some(link.span),
                    format!("link through the URL shortener \"{}\"", link.host),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(text: &str) -> Vec<String> {
        find_links(text).into_iter().map(|l| l.host).collect()
    }

    #[test]
    fn finds_links_with_and_without_scheme() {
        assert_eq!(
            hosts("voir https://Example.com/a?b=1 et www.abidjan.net."),
            ["example.com", "www.abidjan.net"]
        );
        assert_eq!(
            hosts("mon site: gagner-vite.xyz/offre"),
            ["gagner-vite.xyz"]
        );
        assert_eq!(
            hosts("Le P.I.B. a crû de 5.2 % en 2025. Bravo."),
            Vec::<String>::new()
        );
        assert_eq!(hosts("écrivez à moi@exemple.fr"), ["exemple.fr"]);
    }

    #[test]
    fn domains_match_their_subdomains_only() {
        assert!(within("news.example.com", "example.com"));
        assert!(within("example.com", "example.com"));
        assert!(!within("badexample.com", "example.com"));
    }
}
