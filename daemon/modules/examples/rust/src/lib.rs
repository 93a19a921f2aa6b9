//! Example kiln module in Rust.
//!
//!   rust.sum    attachment of native f64 -> {"sum", "n"}
//!   rust.scale  {"factor": number}, attachment of f64 -> attachment of f64 (x * factor)
//!
//! The kiln_mod_* functions come from kilnd when it loads the module.
#![allow(non_upper_case_globals, non_camel_case_types, non_snake_case, dead_code)]

mod kiln {
    include!(concat!(env!("OUT_DIR"), "/kiln_module.rs"));
}

use kiln::*;
use std::os::raw::{c_char, c_int, c_void};

/// The ABI this module was built for (KILN_MODULE_DECLARE() in C).
#[no_mangle]
pub static kiln_module_abi_version: u32 = KILN_MODULE_ABI_VERSION;

fn fail(call: *mut kiln_mod_call, code: u32, msg: &str) -> c_int {
    let text = std::ffi::CString::new(msg).unwrap_or_default();
    unsafe { kiln_mod_fail(call, code as c_int, b"%s\0".as_ptr() as *const c_char, text.as_ptr()) }
}

/// The attachment as a slice of f64 (borrowed from the call).
fn attachment_f64<'a>(call: *mut kiln_mod_call) -> Option<&'a [f64]> {
    let mut p: *const c_void = std::ptr::null();
    let mut n: usize = 0;
    let rc = unsafe { kiln_mod_attachment_array(call, kiln_mod_elem_KILN_MOD_F64, &mut p, &mut n) };
    if rc != 0 {
        return None;
    }
    Some(if n == 0 { &[] } else { unsafe { std::slice::from_raw_parts(p as *const f64, n) } })
}

extern "C" fn sum(call: *mut kiln_mod_call) -> c_int {
    let x = match attachment_f64(call) {
        Some(x) => x,
        None => return fail(call, kiln_err_KILN_E_INVALID_ARGS, "the attachment must be an array of doubles"),
    };
    let s: f64 = x.iter().sum();
    unsafe {
        kiln_mod_result_int(call, b"n\0".as_ptr() as *const c_char, x.len() as i64);
        if kiln_mod_result_float(call, b"sum\0".as_ptr() as *const c_char, s) != 0 {
            return fail(call, kiln_err_KILN_E_INVALID_ARGS, "the sum is not finite");
        }
    }
    0
}

extern "C" fn scale(call: *mut kiln_mod_call) -> c_int {
    let mut factor: f64 = 0.0;
    if unsafe { kiln_mod_arg_float(call, b"factor\0".as_ptr() as *const c_char, &mut factor) } != 0 {
        return fail(call, kiln_err_KILN_E_INVALID_ARGS, "factor must be a number");
    }
    let x = match attachment_f64(call) {
        Some(x) => x,
        None => return fail(call, kiln_err_KILN_E_INVALID_ARGS, "the attachment must be an array of doubles"),
    };
    let out = unsafe { kiln_mod_output(call, x.len() * 8) } as *mut f64;
    if out.is_null() && !x.is_empty() {
        return fail(call, kiln_err_KILN_E_TOO_LARGE, "no room for the output");
    }
    for (i, v) in x.iter().enumerate() {
        if unsafe { kiln_mod_cancelled(call) } && i % 65536 == 0 {
            return fail(call, kiln_err_KILN_E_CANCELLED, "cancelled");
        }
        unsafe { *out.add(i) = v * factor };
    }
    0
}

const SUM: kiln_mod_action = kiln_mod_action {
    name: b"rust.sum\0".as_ptr() as *const c_char,
    summary: b"Sum of the attachment's doubles (a Rust module).\0".as_ptr() as *const c_char,
    args_schema: b"{\"type\":\"object\",\"additionalProperties\":false}\0".as_ptr() as *const c_char,
    data_schema: b"{\"type\":\"object\",\"properties\":{\"sum\":{\"type\":\"number\"},\"n\":{\"type\":\"integer\"}}}\0"
        .as_ptr() as *const c_char,
    handler: Some(sum),
};

const SCALE: kiln_mod_action = kiln_mod_action {
    name: b"rust.scale\0".as_ptr() as *const c_char,
    summary: b"The attachment's doubles times factor, as an attachment (a Rust module).\0".as_ptr() as *const c_char,
    args_schema: b"{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"factor\"],\"properties\":{\"factor\":{\"type\":\"number\"}}}\0"
        .as_ptr() as *const c_char,
    data_schema: std::ptr::null(),
    handler: Some(scale),
};

/// The module's entry point: registers its actions.
#[no_mangle]
pub extern "C" fn kiln_module_init(reg: *mut kiln_mod_registry) -> c_int {
    for a in [SUM, SCALE].iter() {
        let rc = unsafe { kiln_mod_register(reg, a) };
        if rc != 0 {
            return rc;
        }
    }
    0
}
