// Generates Rust declarations for kiln/module.h with bindgen.  The header
// directory is $KILN_INCLUDE (the Makefile sets it to the tree's include/),
// else pkg-config's kiln-module location is expected in the usual places.
use std::env;
use std::path::PathBuf;

fn main() {
    let include = env::var("KILN_INCLUDE").unwrap_or_else(|_| "/usr/local/include".to_string());
    let header = format!("{}/kiln/module.h", include);
    println!("cargo:rerun-if-changed={}", header);
    println!("cargo:rerun-if-env-changed=KILN_INCLUDE");
    let bindings = bindgen::Builder::default()
        .header(header)
        .clang_arg(format!("-I{}", include))
        .size_t_is_usize(true)
        .allowlist_function("kiln_mod_.*")
        .allowlist_type("kiln_.*")
        .allowlist_var("KILN_.*")
        .generate()
        .expect("bindgen could not read kiln/module.h");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap()).join("kiln_module.rs");
    bindings.write_to_file(out).expect("cannot write the bindings");
}
