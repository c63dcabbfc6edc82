//! The example services the dashboard offers to start from: the FDL files of `examples/`,
//! built into the binary. Each opens with comment lines: its title, then what it does.

use model::service::fdl;
use model::services::Example;

/// Every file of `examples/` (a test checks none is left out).
const FILES: &[(&str, &str)] = &[
    (
        "text-upper.yaml",
        include_str!("../../examples/text-upper.yaml"),
    ),
    (
        "checksums.yaml",
        include_str!("../../examples/checksums.yaml"),
    ),
    (
        "image-grayscale.yaml",
        include_str!("../../examples/image-grayscale.yaml"),
    ),
    (
        "word-count-workflow.yaml",
        include_str!("../../examples/word-count-workflow.yaml"),
    ),
];

/// The examples, in the order the gallery shows them.
pub fn all() -> Vec<Example> {
    FILES.iter().map(|(file, fdl)| example(file, fdl)).collect()
}

fn example(file: &str, text: &str) -> Example {
    let mut comments = text
        .lines()
        .map_while(|line| line.strip_prefix('#'))
        .map(str::trim);
    let title = comments.next().unwrap_or(file).to_string();
    let description = comments.collect::<Vec<_>>().join(" ");
    // Scripts are inline: no file to attach.
    let services = fdl::read(text, |_| None)
        .map(|services| services.into_iter().map(|s| s.name).collect())
        .unwrap_or_default();
    Example {
        file: file.to_string(),
        title,
        description,
        services,
        fdl: text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_examples_is_offered() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples");
        let mut on_disk: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut offered: Vec<String> = FILES.iter().map(|(file, _)| file.to_string()).collect();
        offered.sort();
        assert_eq!(on_disk, offered);
    }

    #[test]
    fn every_example_is_a_valid_fdl_with_a_title_and_a_description() {
        let mut names = Vec::new();
        for (file, text) in FILES {
            let services =
                fdl::parse(text, |_| None).unwrap_or_else(|errors| panic!("{file}: {errors:?}"));
            let example = example(file, text);
            assert!(
                !example.title.is_empty() && example.title.len() < 60,
                "{file}"
            );
            assert!(example.description.len() > 40, "{file}");
            assert_eq!(example.services.len(), services.len(), "{file}");
            names.extend(example.services);
        }
        let count = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), count, "examples must not share service names");
    }
}
