//! The per-tenant classifiers moderators teach, and what one comment teaches.
//!
//! Both models are binary logistic heads over the same features; a label
//! names its model, and for toxicity the category the moderator gave. The
//! category is kept with the label and in the audit trail; the head learns
//! "toxic or not" (see `pipeline::toxicity::model` for why one head).

use super::ToxicityCategory;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ModelKind {
    Spam,
    Toxicity,
}

impl ModelKind {
    pub const ALL: [ModelKind; 2] = [ModelKind::Spam, ModelKind::Toxicity];

    pub fn as_str(self) -> &'static str {
        match self {
            ModelKind::Spam => "spam",
            ModelKind::Toxicity => "toxicity",
        }
    }

    pub fn parse(value: &str) -> Option<ModelKind> {
        ModelKind::ALL.into_iter().find(|k| k.as_str() == value)
    }
}

/// What one comment teaches one model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Label {
    Spam,
    Ham,
    Toxic(ToxicityCategory),
    NotToxic,
}

impl Label {
    pub fn spam(is_spam: bool) -> Label {
        if is_spam { Label::Spam } else { Label::Ham }
    }

    pub fn kind(self) -> ModelKind {
        match self {
            Label::Spam | Label::Ham => ModelKind::Spam,
            Label::Toxic(_) | Label::NotToxic => ModelKind::Toxicity,
        }
    }

    /// Spam, or toxic: the class the model's probability is of.
    pub fn positive(self) -> bool {
        matches!(self, Label::Spam | Label::Toxic(_))
    }

    pub fn category(self) -> Option<ToxicityCategory> {
        match self {
            Label::Toxic(c) => Some(c),
            _ => None,
        }
    }

    /// As shown in the audit trail: `spam`, `ham`, a category, `not_toxic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Spam => "spam",
            Label::Ham => "ham",
            Label::Toxic(c) => c.name(),
            Label::NotToxic => "not_toxic",
        }
    }
}
