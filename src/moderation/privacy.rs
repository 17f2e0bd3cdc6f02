//! Data-subject requests: what moderato holds about one author (access,
//! GDPR art. 15) and removing what identifies them (erasure, art. 17).
//!
//! Erasure keeps the record of moderation: a comment's status, scores,
//! reasons (without their spans and quotes), decisions and the audit trail
//! stay, so counts, standings and "why was this rejected" still answer;
//! what the author wrote, their display name and their address hash go.
//! The author id stays: it is the publisher's pseudonymous key, the one
//! the publisher erases on its side, and without it a second request could
//! not find, or confirm, what was erased.

use std::collections::BTreeSet;

use super::{AuthorError, AuthorView, Moderation, now};
use crate::domain::{AuthorId, Principal};
use crate::storage::{AuditQuery, AuditRecord, AuthorRecord, Erased, Erasure, ReportRecord};

/// What an erased comment's `body` reads.
pub const ERASURE_MARKER: &str = "[erased at the author's request]";

/// Everything stored about one author.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthorExport {
    /// Standing, counts and every comment (newest first).
    pub author: AuthorView,
    /// The reports the author made, oldest first.
    pub reports: Vec<ReportRecord>,
    /// Oldest first.
    pub audit_events: Vec<AuditRecord>,
}

impl Moderation {
    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn export_author(
        &self,
        principal: &Principal,
        author: AuthorId,
    ) -> Result<AuthorExport, AuthorError> {
        let store = self.store();
        let tenant = principal.tenant_id;
        let record = store.get_author(tenant, author.as_str(), u32::MAX).await?;
        let reports = store.reports_by(tenant, author.as_str()).await?;
        if record.is_none() && reports.is_empty() {
            return Err(AuthorError::NotFound);
        }
        // Events about the author and their comments carry their id; the
        // reports they made name them in the event's detail only.
        let mut audit_events = store
            .list_audit_events(
                tenant,
                &AuditQuery {
                    author_id: Some(author.as_str().to_owned()),
                    ..AuditQuery::all()
                },
            )
            .await?;
        let reported: BTreeSet<_> = reports.iter().map(|r| r.comment_id).collect();
        for comment_id in reported {
            let events = store
                .list_audit_events(
                    tenant,
                    &AuditQuery {
                        comment_id: Some(comment_id),
                        action: Some("comment.reported".into()),
                        ..AuditQuery::all()
                    },
                )
                .await?;
            audit_events.extend(events.into_iter().filter(|e| {
                e.detail.get("reporter_id").and_then(|r| r.as_str()) == Some(author.as_str())
            }));
        }
        audit_events.sort_by_key(|e| e.event_id);
        audit_events.dedup_by_key(|e| e.event_id);

        // An author who only reported: a normal standing, no comment.
        let record = record.unwrap_or(AuthorRecord {
            standing: None,
            recent: Vec::new(),
            approved: 0,
            pending_review: 0,
            rejected: 0,
        });
        let at = now();
        store
            .audit_author_export(
                tenant,
                author.as_str(),
                (record.recent.len(), reports.len()),
                &principal.actor(),
                at,
            )
            .await?;
        let author = AuthorView::of(author, record, at);
        Ok(AuthorExport {
            author,
            reports,
            audit_events,
        })
    }

    #[tracing::instrument(skip_all, fields(tenant = %principal.tenant_id))]
    pub async fn erase_author(
        &self,
        principal: &Principal,
        author: AuthorId,
    ) -> Result<Erased, AuthorError> {
        let erased = self
            .store()
            .erase_author(
                principal.tenant_id,
                author.as_str(),
                &Erasure {
                    marker: ERASURE_MARKER,
                    actor: &principal.actor(),
                    now: now(),
                },
            )
            .await?
            .ok_or(AuthorError::NotFound)?;
        tracing::info!(
            comments = erased.comments,
            reports = erased.reports,
            "erased an author's data"
        );
        Ok(erased)
    }
}
