//! Property tests on random DAGs: the parallel executor agrees with the sequential one and
//! with a plain model of the graph, with and without failing nodes.

use std::collections::{BTreeSet, HashMap};
use std::sync::LazyLock;

use dagtel::*;
use proptest::prelude::*;

mod common;
use common::random_graph::*;

/// The plain model: values (where computable), statuses and ancestor sets of every node.
struct Model {
    values: Vec<Option<u64>>,
    status: Vec<NodeStatus>,
    ancestors: Vec<BTreeSet<usize>>,
    planned: BTreeSet<usize>,
}

fn model(spec: &Spec) -> Model {
    let n = spec.parents.len();
    let mut values = vec![None; n];
    let mut status = vec![NodeStatus::Succeeded; n];
    let mut ancestors: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); n];
    for i in 0..n {
        let parents = &spec.parents[i];
        let mut set = BTreeSet::new();
        for &p in parents {
            set.insert(p);
            set.extend(ancestors[p].iter().copied());
        }
        ancestors[i] = set;
        status[i] = if parents.iter().any(|&p| status[p] != NodeStatus::Succeeded) {
            NodeStatus::Skipped
        } else if spec.failing[i] {
            NodeStatus::Failed
        } else {
            NodeStatus::Succeeded
        };
        if status[i] == NodeStatus::Succeeded {
            let inputs: Vec<u64> = parents.iter().map(|&p| values[p].unwrap()).collect();
            let refs: Vec<&u64> = inputs.iter().collect();
            values[i] = Some(compute(i, spec.seed, &refs));
        }
    }
    let mut planned = BTreeSet::new();
    for &r in &spec.requested {
        planned.insert(r);
        planned.extend(ancestors[r].iter().copied());
    }
    Model {
        values,
        status,
        ancestors,
        planned,
    }
}

static SEQUENTIAL: LazyLock<Executor> = LazyLock::new(Executor::sequential);
static PARALLEL_2: LazyLock<Executor> = LazyLock::new(|| Executor::parallel().threads(2));
static PARALLEL_4: LazyLock<Executor> = LazyLock::new(|| Executor::parallel().threads(4));
static SEQUENTIAL_CONTINUE: LazyLock<Executor> =
    LazyLock::new(|| Executor::sequential().failure_policy(FailurePolicy::Continue));
static PARALLEL_2_CONTINUE: LazyLock<Executor> = LazyLock::new(|| {
    Executor::parallel()
        .threads(2)
        .failure_policy(FailurePolicy::Continue)
});
static PARALLEL_4_CONTINUE: LazyLock<Executor> = LazyLock::new(|| {
    Executor::parallel()
        .threads(4)
        .failure_policy(FailurePolicy::Continue)
});

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 64,
        // Only the three test files are ours to write: keep no regression files on failure.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// Runs and returns the record and the requested outputs that were produced, by index.
fn run_all(
    exec: &Executor,
    plan: &Plan,
    seed: Handle<u64>,
    spec: &Spec,
    handles: &[Handle<u64>],
) -> (RunRecord, HashMap<usize, u64>) {
    let (outputs, record) = match exec.run(plan, Inputs::new().set(seed, spec.seed)) {
        Ok(run) => run.into_parts(),
        Err(RunError::Failed(finished)) => {
            let finished = *finished;
            (finished.outputs, finished.record)
        }
        Err(other) => panic!("unexpected run error: {other}"),
    };
    let values = spec
        .requested
        .iter()
        .filter_map(|&r| outputs.get(handles[r]).map(|v| (r, *v)))
        .collect();
    (record, values)
}

fn statuses(record: &RunRecord) -> HashMap<usize, NodeStatus> {
    record
        .nodes()
        .map(|n| (index_of(n.name), n.status))
        .collect()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn parallel_matches_sequential_and_the_model(spec in spec(0.0)) {
        let (plan, seed, handles) = plan(&spec);
        let expected = model(&spec);
        let planned: BTreeSet<usize> = plan.nodes().map(|n| index_of(n.name())).collect();
        prop_assert_eq!(&planned, &expected.planned);
        prop_assert_eq!(plan.len(), expected.planned.len());
        prop_assert_eq!(plan.inputs(), vec!["seed"]);

        let (seq_record, seq_values) = run_all(&SEQUENTIAL, &plan, seed, &spec, &handles);
        let wanted: HashMap<usize, u64> = spec
            .requested
            .iter()
            .map(|&r| (r, expected.values[r].unwrap()))
            .collect();
        prop_assert_eq!(&seq_values, &wanted);
        let seq_nodes: BTreeSet<usize> = statuses(&seq_record).into_keys().collect();
        prop_assert_eq!(&seq_nodes, &expected.planned);
        prop_assert_eq!(seq_record.len(), expected.planned.len());
        prop_assert_eq!(seq_record.count(NodeStatus::Succeeded), expected.planned.len());

        for exec in [&*PARALLEL_2, &*PARALLEL_4] {
            let (record, values) = run_all(exec, &plan, seed, &spec, &handles);
            prop_assert_eq!(&values, &seq_values);
            let nodes: BTreeSet<usize> = statuses(&record).into_keys().collect();
            prop_assert_eq!(&nodes, &seq_nodes);
            prop_assert_eq!(record.len(), seq_record.len());
            prop_assert_eq!(record.outcome, Outcome::Succeeded);
            prop_assert!(record.nodes().all(|n| n.attempts == 1));
            for node in record.nodes() {
                let stage = spec.stages[index_of(node.name)].map(|s| STAGES[s]);
                prop_assert_eq!(node.stage(), stage);
            }
        }
    }

    #[test]
    fn failures_skip_exactly_their_descendants(spec in spec(0.12)) {
        let (plan, seed, handles) = plan(&spec);
        let expected = model(&spec);

        let mut seen = Vec::new();
        for exec in [&*SEQUENTIAL_CONTINUE, &*PARALLEL_2_CONTINUE, &*PARALLEL_4_CONTINUE] {
            let (record, values) = run_all(exec, &plan, seed, &spec, &handles);
            let status = statuses(&record);
            prop_assert_eq!(status.len(), expected.planned.len());
            for (&i, &got) in &status {
                prop_assert!(expected.planned.contains(&i));
                prop_assert_eq!(got, expected.status[i], "status of n{}", i);
            }
            let any_failed = expected.planned.iter().any(|&i| expected.status[i] == NodeStatus::Failed);
            prop_assert_eq!(
                record.outcome,
                if any_failed { Outcome::Failed } else { Outcome::Succeeded }
            );
            for node in record.nodes() {
                let i = index_of(node.name);
                match (&node.status, &node.outcome) {
                    (NodeStatus::Skipped, Some(NodeOutcome::Skipped(SkipReason::UpstreamFailed { ancestor }))) => {
                        let a = index_of(ancestor);
                        prop_assert!(
                            expected.ancestors[i].contains(&a),
                            "n{} names n{}, which is not its ancestor", i, a
                        );
                        prop_assert_eq!(expected.status[a], NodeStatus::Failed, "n{} names n{}", i, a);
                        prop_assert_eq!(node.attempts, 0);
                    }
                    (NodeStatus::Skipped, other) => {
                        prop_assert!(false, "n{} skipped with {:?}", i, other);
                    }
                    (NodeStatus::Failed, Some(NodeOutcome::Failed { message })) => {
                        prop_assert!(spec.failing[i]);
                        prop_assert_eq!(message, &format!("node {i} fails on purpose"));
                        prop_assert_eq!(node.attempts, 1);
                    }
                    (NodeStatus::Succeeded, Some(NodeOutcome::Succeeded)) => {}
                    (status, outcome) => {
                        prop_assert!(false, "n{}: {:?} with {:?}", i, status, outcome);
                    }
                }
            }
            // Requested outputs whose node succeeded are delivered, with the model's value.
            let wanted: HashMap<usize, u64> = spec
                .requested
                .iter()
                .filter_map(|&r| expected.values[r].map(|v| (r, v)))
                .collect();
            prop_assert_eq!(&values, &wanted);
            seen.push(status);
        }
        prop_assert_eq!(&seen[0], &seen[1]);
        prop_assert_eq!(&seen[0], &seen[2]);
    }
}
