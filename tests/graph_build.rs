//! Building graphs: every `BuildError`, node metadata, topological order and consumers.

use std::collections::HashSet;
use std::time::Duration;

use dagtel::*;

fn build_err(g: DagBuilder) -> BuildError {
    match g.build() {
        Ok(dag) => panic!("expected a build error, got a graph of {} nodes", dag.len()),
        Err(e) => e,
    }
}

// ---------------------------------------------------------------------------------------------
// DuplicateName

#[test]
fn duplicate_node_names_are_rejected() {
    let mut g = DagBuilder::new("dup");
    let x = g.input::<u64>("x");
    let _a = g.node("a").run(x, |_, x| Ok(x + 1));
    let _a2 = g.node("a").run(x, |_, x| Ok(x + 2));
    let err = build_err(g);
    assert_eq!(err, BuildError::DuplicateName { name: "a".into() });
    assert!(err.to_string().contains("`a`"), "{err}");
}

// ---------------------------------------------------------------------------------------------
// BlankName

fn blank(what: &'static str, name: &str, declared: &str) -> BuildError {
    BuildError::BlankName {
        what,
        name: name.into(),
        declared: declared.into(),
    }
}

#[test]
fn blank_graph_node_and_input_names_are_rejected() {
    let mut g = DagBuilder::new("blank");
    let x = g.input::<u64>(" ");
    let _a = g.node("a").run(x, |_, x| Ok(x + 1));
    let err = build_err(g);
    assert_eq!(err, blank("input", " ", "declaration 1 of graph `blank`"));
    assert!(err.to_string().contains("blank input name \" \""), "{err}");

    let mut g = DagBuilder::new("blank");
    let x = g.input::<u64>("x");
    let _a = g.node("").run(x, |_, x| Ok(x + 1));
    let err = build_err(g);
    assert_eq!(
        err,
        blank("node", "", "declaration 2 of graph `blank`, after `x`")
    );
    assert!(
        err.to_string()
            .starts_with("blank node name \"\" (declaration 2 of graph `blank`, after `x`)"),
        "{err}"
    );

    let mut g = DagBuilder::new("\t");
    let x = g.input::<u64>("x");
    let _a = g.node("a").run(x, |_, x| Ok(x + 1));
    assert_eq!(build_err(g), blank("graph", "\t", "the graph's own name"));
}

#[test]
fn blank_stage_and_task_group_names_are_rejected() {
    let mut g = DagBuilder::new("g");
    let x = g.input::<u64>("x");
    let _ = g.node("a").stage(" ").run(x, |_, x| Ok(x + 1));
    assert_eq!(build_err(g), blank("stage", " ", "the stage of node `a`"));

    let mut g = DagBuilder::new("g");
    g.stage("ingest").stage("");
    let x = g.input::<u64>("x");
    let _ = g.node("a").run(x, |_, x| Ok(x + 1));
    let declared = "declared with `DagBuilder::stage`";
    assert_eq!(build_err(g), blank("stage", "", declared));

    let mut g = DagBuilder::new("g");
    let x = g.input::<u64>("x");
    let _ = g.node("a").task("\t").run(x, |_, x| Ok(x + 1));
    assert_eq!(
        build_err(g),
        blank("task group", "\t", "the task group of node `a`")
    );
}

#[test]
fn a_blank_node_is_found_by_its_place_when_many_nodes_are_generated() {
    // A graph generated from configuration: one entry lost its name.
    let names = ["load", "clean", " ", "join"];
    let mut g = DagBuilder::new("etl");
    let x = g.input::<u64>("x");
    for name in names {
        let _ = g.node(name).stage(name).run(x, |_, x| Ok(x + 1));
    }
    // The node's own name comes first; its stage is named by the same place.
    assert_eq!(
        build_err(g),
        blank("node", " ", "declaration 4 of graph `etl`, after `clean`")
    );
}

#[test]
fn node_with_the_name_of_an_input_is_rejected() {
    let mut g = DagBuilder::new("dup");
    let x = g.input::<u64>("x");
    let _x = g.node("x").run(x, |_, x| Ok(x + 1));
    assert_eq!(build_err(g), BuildError::DuplicateName { name: "x".into() });
}

#[test]
fn two_inputs_with_one_name_are_rejected() {
    let mut g = DagBuilder::new("dup");
    let _x = g.input::<u64>("x");
    let _x2 = g.input::<String>("x");
    assert_eq!(build_err(g), BuildError::DuplicateName { name: "x".into() });
}

// ---------------------------------------------------------------------------------------------
// MissingDependency

#[test]
fn dependency_on_an_unknown_name_is_reported_with_node_and_name() {
    let mut g = DagBuilder::new("missing");
    let x = g.input::<u64>("x");
    let nope = g.dep::<u64>("nope");
    let _c = g.node("consumer").run((x, nope), |_, (x, n)| Ok(x + n));
    let err = build_err(g);
    assert_eq!(
        err,
        BuildError::MissingDependency {
            node: "consumer".into(),
            missing: "nope".into(),
        }
    );
    let text = err.to_string();
    assert!(text.contains("consumer") && text.contains("nope"), "{text}");
}

#[test]
fn dependency_by_name_resolves_to_a_node_declared_later() {
    let mut g = DagBuilder::new("forward");
    let later = g.dep::<u64>("later");
    let first = g.node("first").run(later, |_, l| Ok(l * 10));
    let x = g.input::<u64>("x");
    let _later = g.node("later").run(x, |_, x| Ok(x + 1));
    let dag = g.build().expect("forward reference resolves");
    assert_eq!(dag.node("first").unwrap().deps(), ["later"]);
    let plan = dag.plan(&Request::new().output(first)).unwrap();
    let run = Executor::sequential()
        .run(&plan, Inputs::new().set(x, 4))
        .unwrap();
    assert_eq!(run.outputs().get(first), Some(&50));
}

// ---------------------------------------------------------------------------------------------
// TypeMismatch

#[test]
fn dependency_of_the_wrong_type_is_reported_with_both_nodes_and_types() {
    let mut g = DagBuilder::new("types");
    let _x = g.input::<u64>("x");
    let wrong = g.dep::<String>("x");
    let _c = g.node("shout").run(wrong, |_, s| Ok(s.to_uppercase()));
    let err = build_err(g);
    let BuildError::TypeMismatch {
        consumer,
        producer,
        expected,
        found,
    } = &err
    else {
        panic!("expected TypeMismatch, got {err:?}");
    };
    assert_eq!(consumer, "shout");
    assert_eq!(producer, "x");
    assert_eq!(*expected, std::any::type_name::<String>());
    assert_eq!(*found, std::any::type_name::<u64>());
    let text = err.to_string();
    for part in ["shout", "`x`", "alloc::string::String", "u64"] {
        assert!(text.contains(part), "`{text}` lacks `{part}`");
    }
}

#[test]
fn type_mismatch_against_a_node_output() {
    let mut g = DagBuilder::new("types");
    let x = g.input::<u64>("x");
    let _half = g.node("half").run(x, |_, x| Ok(*x as f64 / 2.0));
    let wrong = g.dep::<u64>("half");
    let _c = g.node("next").run(wrong, |_, h| Ok(h + 1));
    match build_err(g) {
        BuildError::TypeMismatch {
            consumer,
            producer,
            expected,
            found,
        } => {
            assert_eq!((consumer.as_str(), producer.as_str()), ("next", "half"));
            assert_eq!((expected, found), ("u64", "f64"));
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Cycle

/// a -> b -> c -> a in data-flow order (b reads a, c reads b, a reads c).
fn three_cycle() -> DagBuilder {
    let mut g = DagBuilder::new("cycle");
    let c_ref = g.dep::<u64>("c");
    let a = g.node("a").run(c_ref, |_, c| Ok(c + 1));
    let b = g.node("b").run(a, |_, a| Ok(a + 1));
    let _c = g.node("c").run(b, |_, b| Ok(b + 1));
    g
}

#[test]
fn cycle_is_reported_with_its_nodes() {
    let err = build_err(three_cycle());
    let BuildError::Cycle { nodes } = &err else {
        panic!("expected Cycle, got {err:?}");
    };
    assert_eq!(
        nodes.len(),
        4,
        "three nodes plus the first repeated: {nodes:?}"
    );
    let distinct: HashSet<&str> = nodes.iter().map(String::as_str).collect();
    assert_eq!(distinct, HashSet::from(["a", "b", "c"]), "{nodes:?}");
    let text = err.to_string();
    assert!(text.starts_with("dependency cycle: "), "{text}");
    assert!(text.contains(" -> "), "{text}");
}

/// Checks that `nodes` is a closed walk along data-flow edges `producer -> consumer`.
fn assert_closed_walk(nodes: &[String], edges: &[(&str, &str)]) {
    assert!(nodes.len() >= 2, "{nodes:?}");
    assert_eq!(
        nodes.first(),
        nodes.last(),
        "first node repeated last: {nodes:?}"
    );
    for pair in nodes.windows(2) {
        assert!(
            edges.contains(&(pair[0].as_str(), pair[1].as_str())),
            "`{}` -> `{}` is not a data-flow edge; cycle reported as {nodes:?}",
            pair[0],
            pair[1]
        );
    }
}

#[test]
fn cycle_lists_nodes_in_data_flow_order_with_first_repeated_last() {
    let BuildError::Cycle { nodes } = build_err(three_cycle()) else {
        panic!("expected Cycle");
    };
    assert_closed_walk(&nodes, &[("a", "b"), ("b", "c"), ("c", "a")]);

    // A two-node cycle: p reads q, q reads p.
    let mut g = DagBuilder::new("two");
    let q_ref = g.dep::<u64>("q");
    let p = g.node("p").run(q_ref, |_, q| Ok(*q));
    let _q = g.node("q").run(p, |_, p| Ok(*p));
    let BuildError::Cycle { nodes } = build_err(g) else {
        panic!("expected Cycle");
    };
    assert_closed_walk(&nodes, &[("q", "p"), ("p", "q")]);
}

#[test]
fn self_cycle_is_reported() {
    let mut g = DagBuilder::new("selfish");
    let x = g.input::<u64>("x");
    let me = g.dep::<u64>("me");
    let _me = g.node("me").run((x, me), |_, (x, me)| Ok(x + me));
    assert_eq!(
        build_err(g),
        BuildError::Cycle {
            nodes: vec!["me".into(), "me".into()],
        }
    );
}

#[test]
fn cycle_off_to_the_side_of_valid_nodes_is_still_found() {
    let mut g = DagBuilder::new("side");
    let x = g.input::<u64>("x");
    let _ok = g.node("ok").run(x, |_, x| Ok(*x));
    let back = g.dep::<u64>("loop2");
    let l1 = g.node("loop1").run((x, back), |_, (x, b)| Ok(x + b));
    let _l2 = g.node("loop2").run(l1, |_, l| Ok(*l));
    match build_err(g) {
        BuildError::Cycle { nodes } => {
            let distinct: HashSet<&str> = nodes.iter().map(String::as_str).collect();
            assert_eq!(distinct, HashSet::from(["loop1", "loop2"]), "{nodes:?}");
        }
        other => panic!("expected Cycle, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// ForeignHandle

#[test]
fn handle_from_another_builder_is_rejected() {
    let mut other = DagBuilder::new("other");
    let foreign = other.input::<u64>("x");
    let mut g = DagBuilder::new("mine");
    let _x = g.input::<u64>("x"); // same name and type, still another graph's handle
    let _uses = g.node("uses").run(foreign, |_, x| Ok(x + 1));
    let err = build_err(g);
    assert_eq!(
        err,
        BuildError::ForeignHandle {
            node: "uses".into(),
            position: 1,
            type_name: "u64",
        }
    );
    assert!(err.to_string().contains("`uses`"), "{err}");
    assert!(
        err.to_string()
            .contains("dependency handle 1 (of type `u64`)"),
        "{err}"
    );
    // The other builder is unaffected.
    assert!(other.build().is_ok());
}

#[test]
fn named_dep_from_another_builder_is_rejected() {
    let mut other = DagBuilder::new("other");
    let foreign = other.dep::<String>("x");
    let mut g = DagBuilder::new("mine");
    let x = g.input::<u64>("x");
    let _uses = g
        .node("uses")
        .run((x, foreign), |_, (x, y): (&u64, &String)| {
            Ok(x + y.len() as u64)
        });
    assert_eq!(
        build_err(g),
        BuildError::ForeignHandle {
            node: "uses".into(),
            position: 2,
            type_name: "alloc::string::String",
        }
    );
}

// ---------------------------------------------------------------------------------------------
// InvalidOption

#[test]
fn timeout_on_a_sync_node_is_rejected() {
    let mut g = DagBuilder::new("opts");
    let x = g.input::<u64>("x");
    let _slow = g
        .node("slow")
        .timeout(Duration::from_millis(10))
        .run(x, |_, x| Ok(*x));
    match build_err(g) {
        BuildError::InvalidOption { node, reason } => {
            assert_eq!(node, "slow");
            assert!(reason.contains("async"), "{reason}");
        }
        other => panic!("expected InvalidOption, got {other:?}"),
    }
}

#[test]
fn timeout_on_an_async_node_is_accepted() {
    let mut g = DagBuilder::new("opts");
    let x = g.input::<u64>("x");
    let _slow = g
        .node("slow")
        .timeout(Duration::from_millis(10))
        .run_async(x, |_, x| async move { Ok(*x) });
    let dag = g.build().expect("timeout applies to async nodes");
    let meta = dag.node("slow").unwrap();
    assert_eq!(meta.kind(), NodeKind::Async);
    assert_eq!(meta.timeout(), Some(Duration::from_millis(10)));
}

// ---------------------------------------------------------------------------------------------
// Task groups

#[test]
fn task_group_spanning_two_stages_is_rejected() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").stage("s1").task("t").run(x, |_, x| Ok(*x));
    let _b = g.node("b").stage("s2").task("t").run(a, |_, a| Ok(*a));
    let err = build_err(g);
    assert_eq!(
        err,
        BuildError::TaskSpansStages {
            task: "t".into(),
            first: "s1".into(),
            second: "s2".into(),
        }
    );
    let text = err.to_string();
    assert!(text.contains("s1") && text.contains("s2"), "{text}");
}

#[test]
fn task_group_mixing_a_stage_and_no_stage_is_rejected() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").task("t").run(x, |_, x| Ok(*x));
    let _b = g.node("b").stage("s").task("t").run(a, |_, a| Ok(*a));
    assert_eq!(
        build_err(g),
        BuildError::TaskSpansStages {
            task: "t".into(),
            first: "(none)".into(),
            second: "s".into(),
        }
    );
}

/// Group {a, c} with a -> b -> c and b outside the group.
fn broken_group() -> DagBuilder {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").task("grp").run(x, |_, x| Ok(*x));
    let b = g.node("b").run(a, |_, a| Ok(a + 1));
    let _c = g.node("c").task("grp").run(b, |_, b| Ok(b + 1));
    g
}

#[test]
fn task_group_that_a_path_leaves_and_reenters_is_rejected() {
    match build_err(broken_group()) {
        BuildError::TaskCycle { task, path } => {
            assert_eq!(task, "grp");
            let steps: HashSet<&str> = path.split(" -> ").collect();
            assert_eq!(steps, HashSet::from(["grp", "b"]), "{path}");
        }
        other => panic!("expected TaskCycle, got {other:?}"),
    }
}

#[test]
fn task_cycle_path_is_a_closed_walk() {
    let BuildError::TaskCycle { path, .. } = build_err(broken_group()) else {
        panic!("expected TaskCycle");
    };
    let steps: Vec<String> = path.split(" -> ").map(str::to_string).collect();
    assert_closed_walk(&steps, &[("grp", "b"), ("b", "grp")]);
}

#[test]
fn contiguous_task_group_builds() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").task("grp").run(x, |_, x| Ok(*x));
    let b = g.node("b").task("grp").run(a, |_, a| Ok(a + 1));
    let _c = g.node("c").run((a, b), |_, (a, b)| Ok(a + b));
    let dag = g.build().expect("a -> b inside the group, c after it");
    assert_eq!(dag.node("a").unwrap().task_id(), "grp");
    assert_eq!(dag.node("c").unwrap().task_id(), "c");
}

#[test]
fn task_group_named_like_a_node_outside_it_is_rejected() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").run(x, |_, x| Ok(*x));
    let _b = g.node("b").task("a").run(a, |_, a| Ok(a + 1));
    let err = build_err(g);
    assert_eq!(err, BuildError::TaskNameTaken { task: "a".into() });
    assert!(err.to_string().contains("`a`"), "{err}");
}

#[test]
fn task_group_named_like_an_input_is_rejected() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let _b = g.node("b").task("x").run(x, |_, x| Ok(x + 1));
    assert_eq!(build_err(g), BuildError::TaskNameTaken { task: "x".into() });
}

#[test]
fn task_group_named_like_one_of_its_own_nodes_is_accepted() {
    let mut g = DagBuilder::new("groups");
    let x = g.input::<u64>("x");
    let a = g.node("a").task("a").run(x, |_, x| Ok(*x));
    let _b = g.node("b").task("a").run(a, |_, a| Ok(a + 1));
    assert!(g.build().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Valid graphs and their metadata

#[test]
fn typed_handle_graph_builds_and_runs() {
    let mut g = DagBuilder::new("typed");
    let words = g.input::<Vec<String>>("words");
    let factor = g.input::<usize>("factor");
    let count = g.node("count").run(words, |_, w| Ok(w.len()));
    let longest = g.node("longest").run(words, |_, w| {
        Ok(w.iter().map(String::len).max().unwrap_or(0))
    });
    let score = g
        .node("score")
        .run((count, longest, factor), |_, (c, l, f)| Ok((c + l) * f));
    let label = g
        .node("label")
        .run((score, vec![count, longest]), |_, (s, parts)| {
            Ok(format!(
                "{s}:{}",
                parts
                    .iter()
                    .map(|p| p.to_string())
                    .collect::<Vec<_>>()
                    .join(",")
            ))
        });
    let dag = g.build().expect("typed handles build");
    assert_eq!(dag.name(), "typed");
    assert_eq!(dag.len(), 6);
    assert!(!dag.is_empty());
    let plan = dag.plan(&Request::new().output(label)).unwrap();
    let inputs = || {
        Inputs::new()
            .set(
                words,
                vec!["ab".to_string(), "abcd".to_string(), "a".to_string()],
            )
            .set(factor, 2)
    };
    let run = Executor::sequential().run(&plan, inputs()).unwrap();
    assert_eq!(run.outputs().get(label).map(String::as_str), Some("14:3,4"));
}

#[test]
fn empty_builder_builds_an_empty_graph() {
    let dag = DagBuilder::new("empty").build().unwrap();
    assert!(dag.is_empty());
    assert_eq!(dag.len(), 0);
    assert_eq!(dag.nodes().count(), 0);
}

#[test]
fn node_meta_reports_its_declaration() {
    let mut g = DagBuilder::new("meta");
    g.stage("load").stage("transform");
    let x = g.input::<u64>("x");
    let y = g.input::<String>("y");
    let a = g
        .node("a")
        .tag("layer", "bronze")
        .tag("owner", "team-a")
        .tag("layer", "silver")
        .stage("load")
        .version("v1")
        .retry(RetryPolicy::attempts(3))
        .run(x, |_, x| Ok(*x));
    let _b = g
        .node("b")
        .stage("transform")
        .task("grp")
        .run((y, a, x), |_, (y, a, x)| Ok(format!("{y}{a}{x}")));
    let _fan = g
        .node("fan")
        .run((vec![a, x, a], y), |_, (nums, y)| Ok(nums.len() + y.len()));
    let dag = g.build().unwrap();

    let a = dag.node("a").unwrap();
    assert_eq!(a.name(), "a");
    assert_eq!(a.kind(), NodeKind::Sync);
    assert_eq!(
        a.tags(),
        [
            ("layer".to_string(), "bronze".to_string()),
            ("owner".to_string(), "team-a".to_string()),
            ("layer".to_string(), "silver".to_string()),
        ]
    );
    assert_eq!(
        a.tag("layer"),
        Some("silver"),
        "the last value of a repeated key wins"
    );
    assert_eq!(a.tag("owner"), Some("team-a"));
    assert_eq!(a.tag("missing"), None);
    assert_eq!(a.stage(), Some("load"));
    assert_eq!(a.task_group(), None);
    assert_eq!(a.task_id(), "a");
    assert_eq!(a.deps(), ["x"]);
    assert_eq!(a.output_type(), "u64");
    assert_eq!(a.version(), Some("v1"));
    assert_eq!(a.retry().max_attempts(), 3);
    assert_eq!(a.timeout(), None);

    let b = dag.node("b").unwrap();
    assert_eq!(b.stage(), Some("transform"));
    assert_eq!(b.task_group(), Some("grp"));
    assert_eq!(b.task_id(), "grp");
    assert_eq!(
        b.deps(),
        ["y", "a", "x"],
        "argument order, not declaration order"
    );
    assert_eq!(b.output_type(), std::any::type_name::<String>());
    assert!(b.tags().is_empty());
    assert_eq!(b.version(), None);

    let fan = dag.node("fan").unwrap();
    assert_eq!(fan.deps(), ["a", "x", "a", "y"]);
    assert_eq!(fan.output_type(), "usize");
    assert_eq!(fan.stage(), None);

    let x = dag.node("x").unwrap();
    assert_eq!(x.kind(), NodeKind::Input);
    assert!(x.deps().is_empty());
    assert_eq!(x.output_type(), "u64");
    assert_eq!(
        dag.node("y").unwrap().output_type(),
        std::any::type_name::<String>()
    );
    assert!(dag.node("nope").is_none());
    assert_eq!(dag.stages(), ["load", "transform"]);
}

#[test]
fn stages_are_listed_in_declaration_then_first_use_order() {
    let mut g = DagBuilder::new("stages");
    g.stage("late");
    let x = g.input::<u64>("x");
    let a = g.node("a").stage("early").run(x, |_, x| Ok(*x));
    let b = g.node("b").stage("late").run(a, |_, a| Ok(*a));
    let _c = g.node("c").stage("middle").run(b, |_, b| Ok(*b));
    let dag = g.build().unwrap();
    assert_eq!(dag.stages(), ["late", "early", "middle"]);
}

/// One small graph, declared the same way each time except for `version` and `tag`.
fn fingerprint_of(version: Option<&str>, tag: &str) -> u64 {
    let mut g = DagBuilder::new("fp");
    let x = g.input::<u64>("x");
    let mut node = g.node("n").tag("layer", tag).stage("s");
    if let Some(v) = version {
        node = node.version(v);
    }
    let _n = node.run(x, |_, x| Ok(x + 1));
    let dag = g.build().unwrap();
    dag.node("n").unwrap().fingerprint()
}

#[test]
fn fingerprint_follows_the_declaration() {
    let v1 = fingerprint_of(Some("v1"), "gold");
    assert_eq!(
        v1,
        fingerprint_of(Some("v1"), "gold"),
        "identical declaration, other builder"
    );
    assert_ne!(v1, fingerprint_of(Some("v2"), "gold"), "version changed");
    assert_ne!(v1, fingerprint_of(None, "gold"), "version removed");
    assert_ne!(v1, fingerprint_of(Some("v1"), "silver"), "tag changed");
}

#[test]
fn fingerprint_depends_on_dependencies_and_output_type() {
    let build = |dep_name: &str, as_string: bool| {
        let mut g = DagBuilder::new("fp");
        let x = g.input::<u64>(dep_name);
        if as_string {
            let _n = g.node("n").run(x, |_, x| Ok(x.to_string()));
        } else {
            let _n = g.node("n").run(x, |_, x| Ok(*x));
        }
        g.build().unwrap().node("n").unwrap().fingerprint()
    };
    let base = build("x", false);
    assert_eq!(base, build("x", false));
    assert_ne!(base, build("z", false), "dependency renamed");
    assert_ne!(base, build("x", true), "output type changed");
}

#[test]
fn nodes_are_listed_in_topological_order() {
    // Declared consumers first, through named references, so declaration order is not
    // topological.
    let mut g = DagBuilder::new("topo");
    let c_ref = g.dep::<u64>("c");
    let b_ref = g.dep::<u64>("b");
    let a_ref = g.dep::<u64>("a");
    let _d = g.node("d").run((c_ref, b_ref), |_, (c, b)| Ok(c + b));
    let _c = g.node("c").run(vec![b_ref, a_ref], |_, v| {
        Ok(v.iter().copied().sum::<u64>())
    });
    let _b = g.node("b").run(a_ref, |_, a| Ok(a * 2));
    let x = g.input::<u64>("x");
    let _a = g.node("a").run(x, |_, x| Ok(x + 1));
    let dag = g.build().unwrap();

    let order: Vec<&str> = dag.nodes().map(NodeMeta::name).collect();
    assert_eq!(order.len(), dag.len());
    let distinct: HashSet<&str> = order.iter().copied().collect();
    assert_eq!(distinct, HashSet::from(["a", "b", "c", "d", "x"]));
    let pos = |name: &str| order.iter().position(|n| *n == name).unwrap();
    for node in dag.nodes() {
        for dep in node.deps() {
            assert!(
                pos(dep) < pos(node.name()),
                "`{dep}` must come before `{}` in {order:?}",
                node.name()
            );
        }
    }
    // The chain forces one order.
    assert_eq!(order, ["x", "a", "b", "c", "d"]);
}

#[test]
fn consumers_lists_the_readers_of_a_node() {
    let mut g = DagBuilder::new("consumers");
    let x = g.input::<u64>("x");
    let a = g.node("a").run(x, |_, x| Ok(*x));
    let b = g.node("b").run((x, a), |_, (x, a)| Ok(x + a));
    let _c = g.node("c").run(b, |_, b| Ok(*b));
    let dag = g.build().unwrap();

    fn sorted(mut v: Vec<&str>) -> Vec<&str> {
        v.sort_unstable();
        v
    }
    assert_eq!(sorted(dag.consumers("x")), ["a", "b"]);
    assert_eq!(dag.consumers("a"), ["b"]);
    assert_eq!(dag.consumers("b"), ["c"]);
    assert!(dag.consumers("c").is_empty());
    assert!(dag.consumers("unknown").is_empty());
}

#[test]
fn consumers_lists_each_reader_once() {
    let mut g = DagBuilder::new("consumers");
    let x = g.input::<u64>("x");
    let _twice = g.node("twice").run((x, x), |_, (a, b)| Ok(a + b));
    let _fan = g.node("fan").run(vec![x, x, x], |_, v| Ok(v.len()));
    let dag = g.build().unwrap();
    let mut readers = dag.consumers("x");
    readers.sort_unstable();
    assert_eq!(readers, ["fan", "twice"]);
}

#[test]
fn dag_clones_share_the_graph() {
    let mut g = DagBuilder::new("shared");
    let x = g.input::<u64>("x");
    let _a = g.node("a").run(x, |_, x| Ok(*x));
    let dag = g.build().unwrap();
    let copy = dag.clone();
    let names = |d: &Dag| d.nodes().map(|n| n.name().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&dag), names(&copy));
    assert_eq!(
        dag.node("a").unwrap().fingerprint(),
        copy.node("a").unwrap().fingerprint()
    );
    assert!(format!("{dag:?}").contains("shared"));
}

/// Errors found while declaring come out duplicates first, whatever the declaration order.
mod declared_errors {
    use std::time::Duration;

    use dagtel::{BuildError, DagBuilder};

    #[test]
    fn duplicate_name_is_reported_before_an_invalid_option() {
        let mut g = DagBuilder::new("order");
        let x = g.input::<u32>("x");
        let _t = g
            .node("timed")
            .timeout(Duration::from_secs(1))
            .run(x, |_, x| Ok(*x));
        let _a = g.node("dup").run(x, |_, x| Ok(*x));
        let _b = g.node("dup").run(x, |_, x| Ok(*x));
        let err = g.build().unwrap_err();
        assert!(
            matches!(err, BuildError::DuplicateName { .. }),
            "duplicate names first, got: {err}"
        );
    }
}
