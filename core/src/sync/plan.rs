//! `plan` (pure): desired image vs applied image → the ordered work for one terminal.
//! Removals come first (people before the rules they refer to), then additions and changes
//! (holidays and rules before the people who refer to them). Subjects equal on both sides
//! produce nothing.

use super::image::{DeviceImage, SubjectImage};

/// One unit of work on a subject.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Remove what was applied under `key`.
    Remove {
        /// Subject key.
        key: String,
        /// What the device holds for it (as last applied).
        applied: SubjectImage,
    },
    /// Make the device hold `desired` under `key`; `applied` is what it holds now.
    Put {
        /// Subject key.
        key: String,
        /// What it must hold.
        desired: SubjectImage,
        /// What it held, if anything.
        applied: Option<Box<SubjectImage>>,
    },
}

impl Step {
    /// The subject key.
    pub fn key(&self) -> &str {
        match self {
            Step::Remove { key, .. } | Step::Put { key, .. } => key,
        }
    }

    /// Whether this step removes.
    pub fn is_removal(&self) -> bool {
        matches!(self, Step::Remove { .. })
    }
}

/// A subject key found in one of two images or in both, from [`pair`].
enum Paired<'a> {
    /// Only in the first image.
    First(&'a String, &'a SubjectImage),
    /// Only in the second image.
    Second(&'a String, &'a SubjectImage),
    /// In both.
    Both(&'a String, &'a SubjectImage, &'a SubjectImage),
}

/// Both images' subjects in key order, each paired with its counterpart: one walk over
/// the two (they are ordered by key), a key comparison per step rather than a lookup per
/// subject (a terminal holding 10,000 people plans every change of the core this way).
fn pair<'a>(first: &'a DeviceImage, second: &'a DeviceImage) -> impl Iterator<Item = Paired<'a>> {
    let mut first = first.iter().peekable();
    let mut second = second.iter().peekable();
    std::iter::from_fn(move || {
        let order = match (first.peek(), second.peek()) {
            (None, None) => return None,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some((a, _)), Some((b, _))) => a.cmp(b),
        };
        match order {
            std::cmp::Ordering::Less => first.next().map(|(k, v)| Paired::First(k, v)),
            std::cmp::Ordering::Greater => second.next().map(|(k, v)| Paired::Second(k, v)),
            std::cmp::Ordering::Equal => {
                let (key, a) = first.next()?;
                let (_, b) = second.next()?;
                Some(Paired::Both(key, a, b))
            }
        }
    })
}

/// The steps that bring `applied` to `desired`, removals first.
pub fn plan(desired: &DeviceImage, applied: &DeviceImage) -> Vec<Step> {
    let mut removals = Vec::new();
    let mut puts = Vec::new();
    for paired in pair(desired, applied) {
        match paired {
            Paired::First(key, wanted) => puts.push(Step::Put {
                key: key.clone(),
                desired: wanted.clone(),
                applied: None,
            }),
            Paired::Second(key, held) => removals.push(Step::Remove {
                key: key.clone(),
                applied: held.clone(),
            }),
            Paired::Both(key, wanted, held) if wanted != held => puts.push(Step::Put {
                key: key.clone(),
                desired: wanted.clone(),
                applied: Some(Box::new(held.clone())),
            }),
            Paired::Both(..) => {}
        }
    }
    // Removals go in reverse key order: users (`user:…`) before the rules (`rule:…`) they
    // refer to.
    removals.reverse();
    removals.extend(puts);
    removals
}

/// The keys whose subject differs between two images (present in one only, or unequal),
/// in key order.
pub fn changed_keys(before: &DeviceImage, after: &DeviceImage) -> Vec<String> {
    pair(before, after)
        .filter_map(|paired| match paired {
            Paired::First(key, _) | Paired::Second(key, _) => Some(key.clone()),
            Paired::Both(key, a, b) => (a != b).then(|| key.clone()),
        })
        .collect()
}

/// [`plan`] restricted to `keys` (in key order): when `applied` equals an image and
/// `keys` are the [`changed_keys`] from it to `desired`, this is `plan(desired, applied)`
/// at the cost of the change rather than of the whole image.
pub fn plan_keys(desired: &DeviceImage, applied: &DeviceImage, keys: &[String]) -> Vec<Step> {
    let mut removals = Vec::new();
    let mut puts = Vec::new();
    for key in keys {
        match (desired.get(key), applied.get(key)) {
            (Some(wanted), held) if held != Some(wanted) => puts.push(Step::Put {
                key: key.clone(),
                desired: wanted.clone(),
                applied: held.cloned().map(Box::new),
            }),
            (None, Some(held)) => removals.push(Step::Remove {
                key: key.clone(),
                applied: held.clone(),
            }),
            _ => {}
        }
    }
    removals.reverse();
    removals.extend(puts);
    removals
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::image::{RuleImage, UserImage, rule_key, user_key};
    use std::collections::BTreeSet;

    fn user(id: i64, cards: &[u64], rules: &[i64]) -> SubjectImage {
        SubjectImage::User(std::sync::Arc::new(UserImage {
            id,
            registration: format!("A-{id}"),
            name: "n".into(),
            begin_time: 0,
            end_time: 0,
            cards: cards.iter().copied().collect(),
            pins: BTreeSet::new(),
            qrcodes: BTreeSet::new(),
            templates: BTreeSet::new(),
            face: None,
            rules: rules.iter().copied().collect(),
        }))
    }

    fn rule(id: i64) -> SubjectImage {
        SubjectImage::Rule(Box::new(RuleImage {
            id,
            name: "r".into(),
            spans: Vec::new(),
        }))
    }

    #[test]
    fn removals_come_first_users_before_rules_then_rules_before_users() {
        let applied: DeviceImage = [
            (rule_key(7), rule(7)),
            (user_key(1), user(1, &[10], &[7])),
            (user_key(2), user(2, &[20], &[7])),
        ]
        .into_iter()
        .collect();
        let desired: DeviceImage = [
            (rule_key(8), rule(8)),
            (user_key(2), user(2, &[20, 21], &[8])),
            (user_key(3), user(3, &[], &[8])),
        ]
        .into_iter()
        .collect();
        let keys: Vec<(bool, String)> = plan(&desired, &applied)
            .iter()
            .map(|s| (s.is_removal(), s.key().to_owned()))
            .collect();
        assert_eq!(
            keys,
            vec![
                (true, "user:1".into()),
                (true, "rule:7".into()),
                (false, "rule:8".into()),
                (false, "user:2".into()),
                (false, "user:3".into()),
            ]
        );
    }

    #[test]
    fn nothing_to_do_when_equal_and_a_change_carries_what_was_applied() {
        let image: DeviceImage = [(user_key(1), user(1, &[10], &[]))].into_iter().collect();
        assert!(plan(&image, &image).is_empty());
        let changed: DeviceImage = [(user_key(1), user(1, &[11], &[]))].into_iter().collect();
        match plan(&changed, &image).as_slice() {
            [Step::Put { applied, .. }] => assert_eq!(applied.as_deref(), image.get("user:1")),
            other => panic!("{other:?}"),
        }
    }

    /// The plan as the definition says it: removals in reverse key order, then every
    /// desired subject that differs from what is applied, in key order.
    fn reference(desired: &DeviceImage, applied: &DeviceImage) -> Vec<Step> {
        let mut steps: Vec<Step> = applied
            .iter()
            .rev()
            .filter(|(key, _)| !desired.contains_key(*key))
            .map(|(key, image)| Step::Remove {
                key: key.clone(),
                applied: image.clone(),
            })
            .collect();
        steps.extend(desired.iter().filter_map(|(key, image)| {
            let before = applied.get(key);
            (before != Some(image)).then(|| Step::Put {
                key: key.clone(),
                desired: image.clone(),
                applied: before.cloned().map(Box::new),
            })
        }));
        steps
    }

    #[test]
    fn the_walk_plans_what_the_definition_says() {
        use proptest::prelude::*;
        let image = || {
            prop::collection::btree_map((0_i64..40, any::<bool>()), (0_u64..3, 0_i64..3), 0..30)
                .prop_map(|m| {
                    m.into_iter()
                        .map(|((id, is_rule), (card, r))| {
                            if is_rule {
                                (rule_key(id), rule(id))
                            } else {
                                (user_key(id), user(id, &[card], &[r]))
                            }
                        })
                        .collect::<DeviceImage>()
                })
        };
        proptest!(|(desired in image(), applied in image())| {
            prop_assert_eq!(plan(&desired, &applied), reference(&desired, &applied));
            let changed = changed_keys(&applied, &desired);
            prop_assert_eq!(
                plan_keys(&desired, &applied, &changed),
                reference(&desired, &applied)
            );
            prop_assert_eq!(changed.is_empty(), desired == applied);
        });
    }
}
