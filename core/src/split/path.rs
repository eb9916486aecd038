//! Paths as `fluxgate split` handles them: `/`-separated text relative to the folder the command
//! runs in (the empty string is that folder), so that the plan is the same on every machine and
//! a test can build the tree in memory. Kustomize's relative references (`../../apps/nginx`) are
//! resolved and written back here, and nowhere else.

/// `a/./b/../c/` → `a/c`; leading `..` are kept (`../x`), the folder itself is `""`.
pub(crate) fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if absolute => {}
            other => parts.push(other),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `reference` (as a kustomization writes it) read from the folder `dir`.
pub(crate) fn join(dir: &str, reference: &str) -> String {
    if reference.starts_with('/') || dir.is_empty() {
        return normalize(reference);
    }
    normalize(&format!("{dir}/{reference}"))
}

/// How a kustomization in `from_dir` names `to` (both normalized, `from_dir` inside the folder
/// the command runs in).
pub(crate) fn relative(from_dir: &str, to: &str) -> String {
    if to.starts_with('/') {
        return to.to_owned();
    }
    let from: Vec<&str> = from_dir.split('/').filter(|p| !p.is_empty()).collect();
    let target: Vec<&str> = to.split('/').filter(|p| !p.is_empty()).collect();
    let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&str> = vec![".."; from.len() - common];
    parts.extend(&target[common..]);
    if parts.is_empty() {
        ".".to_owned()
    } else {
        parts.join("/")
    }
}

/// The folder holding `path` (`""` for a top-level entry).
pub(crate) fn parent(path: &str) -> &str {
    path.rsplit_once('/').map_or("", |(dir, _)| dir)
}

/// The last component of `path`.
pub(crate) fn file_name(path: &str) -> &str {
    path.rsplit_once('/').map_or(path, |(_, name)| name)
}

/// `dir/name`, or `name` at the top.
pub(crate) fn child(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_owned()
    } else {
        format!("{dir}/{name}")
    }
}

/// Whether `path` is `dir` or lies below it.
pub(crate) fn is_within(path: &str, dir: &str) -> bool {
    dir.is_empty()
        || path == dir
        || path
            .strip_prefix(dir)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// A path as people read it in the plan: the folder itself is `.`.
pub(crate) fn display(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

/// Whether a kustomization reference names something remote (a Git repository or an HTTP
/// URL) rather than a local file or folder.
pub(crate) fn is_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("github.com/")
        || reference.starts_with("gitlab.com/")
        || reference.starts_with("bitbucket.org/")
        || reference.contains("?ref=")
        || reference.contains("//")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_keeps_leading_parents_and_drops_dots() {
        assert_eq!(normalize("./a/./b/../c/"), "a/c");
        assert_eq!(normalize("../../x"), "../../x");
        assert_eq!(normalize("a/../../x"), "../x");
        assert_eq!(normalize("."), "");
        assert_eq!(normalize("/a/../b"), "/b");
    }

    #[test]
    fn join_reads_a_reference_from_its_folder() {
        assert_eq!(
            join("clusters/cluster-1/apps", "../../../apps/nginx"),
            "apps/nginx"
        );
        assert_eq!(join("", "./apps/nginx/"), "apps/nginx");
        assert_eq!(join("a", "/abs/x"), "/abs/x");
    }

    #[test]
    fn relative_walks_up_to_the_common_folder() {
        assert_eq!(
            relative("clusters/cluster-1/apps/apps-rt", "apps/nginx/nginx-rt"),
            "../../../../apps/nginx/nginx-rt"
        );
        assert_eq!(
            relative("apps/staging/apps-rw", "apps/base/podinfo/podinfo-rw"),
            "../../base/podinfo/podinfo-rw"
        );
        assert_eq!(relative("a/b", "a/b/c"), "c");
        assert_eq!(relative("a/b", "a/b"), ".");
        assert_eq!(relative("a/b", "../x"), "../../../x");
        assert_eq!(relative("", "a"), "a");
    }

    #[test]
    fn parent_name_and_within() {
        assert_eq!(parent("apps/nginx/kustomization.yaml"), "apps/nginx");
        assert_eq!(parent("x.yaml"), "");
        assert_eq!(file_name("apps/nginx/x.yaml"), "x.yaml");
        assert!(is_within("apps/nginx/x.yaml", "apps/nginx"));
        assert!(is_within("apps/nginx", "apps/nginx"));
        assert!(!is_within("apps/nginx-2/x.yaml", "apps/nginx"));
        assert!(is_within("anything", ""));
    }

    #[test]
    fn remote_references() {
        for remote in [
            "https://github.com/org/repo//deploy?ref=v1",
            "github.com/org/repo/deploy?ref=v1",
            "git@github.com:org/repo.git",
            "ssh://git@example.com/repo",
        ] {
            assert!(is_remote(remote), "{remote}");
        }
        for local in ["../base/podinfo", "deployment.yaml", "./sub"] {
            assert!(!is_remote(local), "{local}");
        }
    }
}
