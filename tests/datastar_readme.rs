//! The README's "Datastar in 30 lines" is `examples/datastar_30_lines.rs`, which CI compiles;
//! this keeps the two from drifting apart.

#[test]
fn readme_section_is_the_example() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let example = std::fs::read_to_string(format!("{root}/examples/datastar_30_lines.rs")).unwrap();
    let section = readme
        .split_once("\n## Datastar in 30 lines\n")
        .expect("README has a \"Datastar in 30 lines\" section")
        .1;
    let code = section
        .split_once("```rust,no_run\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the section has a rust code block")
        .0;
    assert_eq!(code, example, "README section and example differ");
}
