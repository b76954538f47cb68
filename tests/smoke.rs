use dagtel::*;

#[test]
fn diamond_runs_in_both_modes() {
    let mut g = DagBuilder::new("diamond");
    let x = g.input::<u64>("x");
    let a = g.node("a").run(x, |_, x| Ok(x + 1));
    let b = g.node("b").run(x, |_, x| Ok(x * 2));
    let c = g.node("c").run((a, b), |_, (a, b)| Ok(a + b));
    let dag = g.build().unwrap();
    let plan = dag.plan(&Request::new().output(c)).unwrap();
    for exec in [Executor::sequential(), Executor::parallel().threads(2)] {
        let run = exec.run(&plan, Inputs::new().set(x, 5)).unwrap();
        assert_eq!(run.outputs().get(c), Some(&16));
        println!("{}", run.record().summary_table());
    }
}
