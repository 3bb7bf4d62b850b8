//! uniffi's binding generator, built from the workspace's own uniffi version so the
//! bindings always match the scaffolding compiled into `wangge-mobile-ffi`.

fn main() {
    uniffi::uniffi_bindgen_main()
}
