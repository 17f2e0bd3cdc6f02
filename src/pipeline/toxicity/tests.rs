use super::*;

fn assess(text: &str) -> Assessment {
    super::assess(text, &Features::extract(text), model::seed_model())
}

fn kinds(text: &str) -> Vec<&'static str> {
    let assessment = assess(text);
    assessment
        .hate
        .iter()
        .filter(|h| h.live())
        .map(|h| h.kind.code())
        .collect()
}

#[test]
fn constructions_over_a_group_are_hate() {
    for (text, kind) in [
        ("Les musulmans sont des animaux.", "hate.dehumanisation"),
        ("les juifs sont tous des voleurs", "hate.derogation"),
        ("Je hais les migrants.", "hate.contempt"),
        ("Il faut exterminer les Peuls.", "hate.threat"),
        ("Dehors les réfugiés !", "hate.exclusion"),
        (
            "Les femmes ne sont pas des êtres humains.",
            "hate.negated_positive",
        ),
        (
            "Les Touaregs ne méritent pas de vivre.",
            "hate.negated_positive",
        ),
        (
            "Les Noirs ne sont-ils pas des animaux ?",
            "hate.dehumanisation",
        ),
        (
            "Je pense que les homosexuels sont une maladie.",
            "hate.dehumanisation",
        ),
        (
            "J'ai croisé des Chinois, et ils étaient répugnants.",
            "hate.derogation",
        ),
        (
            "Regarde ces migrants. Ils ne sont que des parasites.",
            "hate.dehumanisation",
        ),
        (
            "J'estime que les Peuls sont une honte pour l'humanité.",
            "hate.derogation",
        ),
        (
            "Les migrants ne devraient pas avoir les mêmes droits que nous.",
            "hate.negated_positive",
        ),
        (
            "Les Touaregs ? Ils ne méritent que le mépris.",
            "hate.derogation",
        ),
        ("Les femmes ne savent que mentir.", "hate.derogation"),
        ("Il n'y a rien de bon chez les Dogons.", "hate.derogation"),
        ("Les musulmans devraient disparaître.", "hate.threat"),
        (
            "Si je croise encore des Arabes ici, je sors le fusil.",
            "hate.threat",
        ),
        (
            "Ces Touaregs, c'est du bétail, pas des êtres humains.",
            "hate.dehumanisation",
        ),
        (
            "Qui veut vivre à côté des migrants, ces parasites ?",
            "hate.dehumanisation",
        ),
        (
            "Quand je vois des Peuls au marché, je me dis qu'ils devraient disparaître.",
            "hate.threat",
        ),
        ("Je bute le prochain Arabe que je croise.", "hate.threat"),
        ("Chaque Noir du quartier va saigner.", "hate.threat"),
        ("Nique les Dogons.", "hate.contempt"),
        ("Muslims are vermin.", "hate.dehumanisation"),
        (
            "Honestly, refugees are nothing but parasites.",
            "hate.dehumanisation",
        ),
        ("Look at those Jews. They're worthless.", "hate.derogation"),
        ("Why are all Muslims so stupid?", "hate.derogation"),
        (
            "Personally, I find refugees to be parasites.",
            "hate.dehumanisation",
        ),
        (
            "Ban Muslims from voting, it's the only way.",
            "hate.exclusion",
        ),
        ("Nothing makes me sicker than refugees.", "hate.contempt"),
        ("I hate Jews.", "hate.contempt"),
        ("We should deport all refugees.", "hate.exclusion"),
    ] {
        assert!(kinds(text).contains(&kind), "{text}: {:?}", kinds(text));
    }
}

#[test]
fn neutral_negated_counter_and_untargeted_texts_are_not() {
    for text in [
        "Les musulmans célèbrent la fin du ramadan.",
        "Je ne déteste pas les migrants.",
        "Les juifs ne sont pas des voleurs.",
        "Dire que les Peuls sont des animaux, c'est du racisme.",
        "Putain, quel match !",
        "Je déteste les lundis.",
        "Les migrants fuient la guerre et la maladie.",
        "Des hommes armés ont tué vingt Peuls dans le centre du Mali.",
        "Le gouvernement a expulsé deux cents migrants.",
        "Les femmes sont formidables.",
        "C'est une honte de dire que les Peuls sont des voleurs.",
        "Les femmes ne devraient pas avoir à se battre pour leurs droits.",
        "Les commerces des Peuls vont disparaître avec la sécheresse.",
        "Vous ne trouvez pas que les migrants sont courageux ?",
        "Quand les Peuls sont attaqués, il faut punir et enfermer les agresseurs.",
        "Le noir lui va bien, c'est du grand art.",
        "Ces migrants, c'est du courage qu'il leur a fallu.",
        "Après la coupure, le quartier est resté dans le noir, il faut réparer.",
        "Le prochain Arabe élu au conseil sera le premier.",
        "Les Peuls, ces éleveurs du Sahel, vivent de leurs troupeaux.",
        "I don't hate gay people.",
        "I have no problem whatsoever with trans people.",
        "Nothing justifies attacking gay people.",
        "Kill the lights, the show is starting.",
        "Ban on Muslims entering the country was struck down by the court.",
    ] {
        assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
    }
}

#[test]
fn misspelt_split_and_glued_group_names_are_found() {
    for text in [
        "les muslumans sont des rats",
        "les musulmns sont des rats",
        "les mu sulmans sont des rats",
        "lesmusulmans sont des rats",
    ] {
        assert!(
            kinds(text).contains(&"hate.dehumanisation"),
            "{text}: {:?}",
            kinds(text)
        );
    }
}

#[test]
fn words_glued_to_function_words_are_read_apart() {
    for (glued, spaced) in [
        (
            "Les Arabes sontdes parasites.",
            "Les Arabes sont des parasites.",
        ),
        (
            "Il faut exterminerles homosexuels.",
            "Il faut exterminer les homosexuels.",
        ),
        ("Mort auxJuifs !", "Mort aux Juifs !"),
        (
            "Les handicapés nesont pas des humains.",
            "Les handicapés ne sont pas des humains.",
        ),
        ("Dehors lesmigrants !", "Dehors les migrants !"),
    ] {
        assert!(!kinds(spaced).is_empty(), "{spaced}");
        assert_eq!(kinds(glued), kinds(spaced), "{glued}");
    }
    for text in [
        "Le dessert des Peuls est délicieux.",
        "Les lesbiennes du quartier organisent une fête.",
        "Les députés votent le budget de la santé.",
    ] {
        assert!(kinds(text).is_empty(), "{text}: {:?}", kinds(text));
    }
    // The lexicons' words map back to the spam features' words.
    let t = LEXICON.tag("Ils sontdes musulmans");
    assert_eq!(
        (0..4).map(|i| t.feature_word(i)).collect::<Vec<_>>(),
        [0, 1, 1, 2]
    );
    let features = Features::extract("Ils sontdes musulmans");
    assert_eq!(features.words.len(), 3);
    let text = "Les Arabes sontdes parasites.";
    let h = assess(text).hate.into_iter().find(|h| h.live()).unwrap();
    assert_eq!(
        &text[h.target.start as usize..h.target.end as usize],
        "Arabes"
    );
    assert_eq!(
        &text[h.attack.start as usize..h.attack.end as usize],
        "parasites"
    );
}

#[test]
fn a_finding_points_at_the_group_and_at_the_attack() {
    let text = "Franchement, les Peuls sont des cafards.";
    let assessment = assess(text);
    let h = &assessment.hate[0];
    assert_eq!(
        &text[h.target.start as usize..h.target.end as usize],
        "Peuls"
    );
    assert_eq!(
        &text[h.attack.start as usize..h.attack.end as usize],
        "cafards"
    );
}

/// Verdicts of the pipeline as a new tenant has it: the default rule pack,
/// the seed spam model, an author with no history.
fn shipped_verdicts(texts: &[String]) -> Vec<crate::pipeline::Verdict> {
    use crate::domain::{
        ArticleId, AuthorId, CommentBody, DisplayName, NewComment, RuleFile, StandingTerm,
        TenantName, TenantSettings,
    };
    use crate::pipeline::{Pipeline, spam};
    let file = RuleFile::from_toml(crate::pipeline::rules::DEFAULT_PACK).unwrap();
    let rules = crate::pipeline::CompiledRules::compile(&file.rules).unwrap();
    let settings = TenantSettings::defaults(&TenantName::parse("t").unwrap());
    let history = spam::AuthorHistory::unknown();
    let now = chrono::Utc::now();
    texts
        .iter()
        .map(|text| {
            let comment = NewComment {
                article_id: ArticleId::parse("a", "art".into()).unwrap(),
                author_id: AuthorId::parse("a", "reader".into()).unwrap(),
                body: CommentBody::parse("b", text.clone()).unwrap(),
                client_comment_id: None,
                author_display_name: DisplayName::parse("d", String::new()).unwrap(),
                author_ip: None,
                parent_comment_id: None,
                language: None,
            };
            let features = spam::Features::extract(text);
            Pipeline::default().evaluate(
                &comment,
                &settings,
                &rules,
                spam::SpamInput {
                    features: &features,
                    model: spam::seed_model(),
                    history: &history,
                    now,
                },
                super::model::seed_model(),
                StandingTerm::default(),
            )
        })
        .collect()
}

#[test]
fn the_team_suite_through_the_shipped_pipeline() {
    use crate::domain::CommentStatus;
    use crate::evaluation::suite::{SuiteReport, expand, wrong_cases};
    let cases = expand(include_str!("../../../tests/functional/hate.toml")).unwrap();
    let texts: Vec<String> = cases.iter().map(|c| c.text.clone()).collect();
    let verdicts = shipped_verdicts(&texts);
    let flagged: Vec<bool> = verdicts
        .iter()
        .map(|v| v.status != CommentStatus::Approved)
        .collect();
    if std::env::var_os("MODERATO_SHOW_SUITE").is_some() {
        for line in wrong_cases(&cases, &verdicts) {
            eprintln!("{line}");
        }
    }
    let report = SuiteReport::compute(&cases, &flagged);
    println!("{}", report.to_text());
    // Floors a little under what the shipped lexicons and model measure
    // (BENCHMARKS.md: French 92.6 % of hateful cases held, 2.4 % of the
    // rest; English 84.1 % and 8.2 %), so a change that loses ground fails
    // here.
    let fr = report.languages.iter().find(|l| l.lang == "fr").unwrap();
    assert!(fr.hateful_flagged >= 0.90, "{}", report.to_text());
    assert!(fr.non_hateful_flagged <= 0.04, "{}", report.to_text());
    let en = report.languages.iter().find(|l| l.lang == "en").unwrap();
    assert!(en.hateful_flagged >= 0.80, "{}", report.to_text());
    assert!(en.non_hateful_flagged <= 0.10, "{}", report.to_text());
}

proptest::proptest! {
    #[test]
    fn any_text_is_assessed_without_panicking_and_spans_are_in_bounds(text in "\\PC{0,80}") {
        let a = assess(&text);
        for h in &a.hate {
            proptest::prop_assert!(text.get(h.attack.start as usize..h.attack.end as usize).is_some());
            proptest::prop_assert!(text.get(h.target.start as usize..h.target.end as usize).is_some());
        }
        for (_, _, span) in &a.abuse {
            proptest::prop_assert!(text.get(span.start as usize..span.end as usize).is_some());
        }
    }
}

#[test]
fn one_character_folding_to_two_words_is_fine() {
    // U+33A1 (㎡) decomposes to "m2"; mojibake of emoji sequences too.
    for text in [
        "@USER Mdr deux nazi n importe quoi ð¤¦ð¼ââï¸",
        "㎡ ½ ﬀ ⑴ ㈱ sales ㍱",
        "ǅ ǈ ﬁ",
    ] {
        let _ = assess(text);
    }
}

#[test]
fn abusive_words_quoted_to_be_denounced_are_not_the_writers() {
    let quoted = assess("When I hear people shout \"death to Jews\", it chills me to the bone.");
    assert!(quoted.abuse.is_empty(), "{:?}", quoted.abuse);
    assert!(quoted.scores.highest().1 < 0.7, "{:?}", quoted.scores);
    // Said, not quoted: the same words are a threat.
    let said = assess("Death to Jews, it is time.");
    assert!(said.scores.highest().1 >= 0.7, "{:?}", said.scores);
}

#[test]
fn every_cue_has_a_bucket_of_its_own() {
    let cue = &*super::CUES;
    let mut all: Vec<u32> = cue.abuse.iter().flatten().flatten().copied().collect();
    all.extend(cue.hate);
    all.extend([
        cue.slur,
        cue.dehumanising,
        cue.negative_attribute,
        cue.violence,
        cue.counter,
    ]);
    let n = all.len();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), n, "two cues share a feature bucket");
    assert_eq!(
        cue.hate[super::HateKind::Exclusion as usize],
        crate::pipeline::spam::features::extra_bucket("hate:Exclusion")
    );
}
