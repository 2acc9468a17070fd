//! The exported C functions of GM/T 0016-2012, with the standard's names, argument lists and
//! `SAR_*` codes ([`yiqian_token::skf::ffi`]), as a key maker's `libskf.so` has them.
//!
//! Each function checks its pointers — NULL where a value is needed is
//! `SAR_INVALIDPARAMERR`, a NULL or unknown handle `SAR_INVALIDHANDLEERR` — reads only the
//! documented buffers of the documented lengths, writes results unaligned (the structures
//! are packed), and runs inside `catch_unwind`, so that no panic crosses into the host (it
//! becomes `SAR_FAIL`). Size queries follow the standard: with a NULL buffer, the length
//! pointer receives the size needed; with a buffer too small, `SAR_BUFFER_TOO_SMALL` and the
//! size needed. Name lists end in a double NUL (an empty list is two NULs).
//!
//! The functions are `unsafe`: the host promises what any C caller of an SKF library
//! promises — that each non-NULL pointer points to memory of the documented size, and each
//! string is NUL-terminated.

#![allow(non_snake_case)]

use crate::state::{self, Id, PinFailure};
use std::panic::{self, AssertUnwindSafe};
use std::ptr;
use yiqian_token::skf::ffi::{
    self, BOOL, BYTE, DEVINFO, DWORD, ECCPUBLICKEYBLOB, ECCSIGNATUREBLOB, FILEATTRIBUTE, HANDLE, LPSTR, ULONG, sar,
};
use yiqian_token::skf::{sm2_public_key_blob, sm2_signature_blob};
use zeroize::Zeroizing;

/// The longest name read (device, application, container, file names, labels).
const MAX_NAME: usize = 64;
/// The longest PIN read.
const MAX_PIN: usize = 64;

/// Runs one exported call: its code, `SAR_FAIL` if it panicked.
fn guard(call: impl FnOnce() -> Result<(), ULONG>) -> ULONG {
    match panic::catch_unwind(AssertUnwindSafe(call)) {
        Ok(Ok(())) => sar::SAR_OK,
        Ok(Err(code)) => code,
        Err(_) => sar::SAR_FAIL,
    }
}

/// The table id of a handle.
fn id(handle: HANDLE) -> Result<Id, ULONG> {
    if handle.is_null() { Err(sar::SAR_INVALIDHANDLEERR) } else { Ok(handle.addr()) }
}

/// The handle of a table id (a number, never dereferenced).
fn handle(id: Id) -> HANDLE {
    ptr::without_provenance_mut(id)
}

/// Reads a NUL-terminated string of at most `max` bytes (longer: `SAR_NAMELENERR`; not
/// UTF-8: `SAR_INVALIDPARAMERR`).
///
/// # Safety
/// `text` is NULL or a NUL-terminated string.
unsafe fn string(text: LPSTR, max: usize) -> Result<String, ULONG> {
    let bytes = unsafe { bounded(text, max) }?.ok_or(sar::SAR_NAMELENERR)?;
    String::from_utf8(bytes).map_err(|_| sar::SAR_INVALIDPARAMERR)
}

/// Reads a NUL-terminated PIN into memory that is zeroed on drop.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string.
unsafe fn secret(text: LPSTR) -> Result<Zeroizing<Vec<u8>>, ULONG> {
    unsafe { bounded(text, MAX_PIN) }?.map(Zeroizing::new).ok_or(sar::SAR_PIN_LEN_RANGE)
}

/// The bytes before the NUL, looking at no more than `max + 1` bytes; `None` if no NUL came.
///
/// # Safety
/// `text` is NULL or a NUL-terminated string.
unsafe fn bounded(text: LPSTR, max: usize) -> Result<Option<Vec<u8>>, ULONG> {
    if text.is_null() {
        return Err(sar::SAR_INVALIDPARAMERR);
    }
    let mut bytes = Vec::new();
    for i in 0..=max {
        // SAFETY: the string is NUL-terminated and we stop at its NUL.
        let byte = unsafe { text.cast::<u8>().add(i).read() };
        if byte == 0 {
            return Ok(Some(bytes));
        }
        bytes.push(byte);
    }
    Ok(None)
}

/// The `len` input bytes at `data` (at most `max`: else `SAR_INDATALENERR`).
///
/// # Safety
/// `data` is NULL or points to `len` readable bytes.
unsafe fn input<'a>(data: *const BYTE, len: ULONG, max: usize) -> Result<&'a [u8], ULONG> {
    let len = len as usize;
    if len > max {
        return Err(sar::SAR_INDATALENERR);
    }
    if len == 0 {
        return Ok(&[]);
    }
    if data.is_null() {
        return Err(sar::SAR_INVALIDPARAMERR);
    }
    // SAFETY: the caller's buffer of `len` bytes.
    Ok(unsafe { std::slice::from_raw_parts(data, len) })
}

/// Stores an out-value.
///
/// # Safety
/// `place` is NULL or points to writable memory for a `T` (any alignment).
unsafe fn put<T>(place: *mut T, value: T) -> Result<(), ULONG> {
    if place.is_null() {
        return Err(sar::SAR_INVALIDPARAMERR);
    }
    // SAFETY: the caller's place for a T.
    unsafe { place.write_unaligned(value) };
    Ok(())
}

/// Stores a variable-length result with the size-query convention.
///
/// # Safety
/// `len` is NULL or points to a `ULONG`; `buffer` is NULL or points to `*len` writable bytes.
unsafe fn output(buffer: *mut BYTE, len: *mut ULONG, data: &[u8]) -> Result<(), ULONG> {
    if len.is_null() {
        return Err(sar::SAR_INVALIDPARAMERR);
    }
    let needed = ULONG::try_from(data.len()).map_err(|_| sar::SAR_FAIL)?;
    if buffer.is_null() {
        // SAFETY: a ULONG place.
        return unsafe { put(len, needed) };
    }
    // SAFETY: a ULONG place.
    let room = unsafe { len.read_unaligned() };
    if room < needed {
        // SAFETY: a ULONG place.
        unsafe { put(len, needed) }?;
        return Err(sar::SAR_BUFFER_TOO_SMALL);
    }
    // SAFETY: `room` ≥ `needed` writable bytes at `buffer`.
    unsafe {
        ptr::copy_nonoverlapping(data.as_ptr(), buffer, data.len());
        put(len, needed)
    }
}

/// A name list: each name and a NUL, then a NUL (two NULs for an empty list).
fn multi_string(names: &[String]) -> Vec<u8> {
    let mut bytes = Vec::new();
    for name in names {
        bytes.extend_from_slice(name.as_bytes());
        bytes.push(0);
    }
    if names.is_empty() {
        bytes.push(0);
    }
    bytes.push(0);
    bytes
}

/// Reports a PIN failure's retry count where the host gave a place for it.
///
/// # Safety
/// `retry` is NULL or points to a `ULONG`.
unsafe fn pin_result(result: Result<(), PinFailure>, retry: *mut ULONG) -> Result<(), ULONG> {
    result.map_err(|failure| {
        if !retry.is_null() {
            // SAFETY: a ULONG place.
            unsafe { retry.write_unaligned(failure.tries_left) };
        }
        failure.code
    })
}

// ---- Device management (§7.1) ----

/// `SKF_EnumDev` (§7.1.4): the devices in `YIQIAN_SOFTSKF_DIR` (all present).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_EnumDev(bPresent: BOOL, szNameList: LPSTR, pulSize: *mut ULONG) -> ULONG {
    let _ = bPresent;
    guard(|| unsafe { output(szNameList.cast(), pulSize, &multi_string(&state::enum_devices())) })
}

/// `SKF_ConnectDev` (§7.1.5).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ConnectDev(szName: LPSTR, phDev: *mut HANDLE) -> ULONG {
    guard(|| unsafe {
        let name = string(szName, MAX_NAME)?;
        if phDev.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let id = state::table().connect(&name)?;
        put(phDev, handle(id))
    })
}

/// `SKF_DisConnectDev` (§7.1.6): the handle and every handle opened through it end.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_DisConnectDev(hDev: HANDLE) -> ULONG {
    guard(|| state::table().disconnect(id(hDev)?))
}

/// `SKF_GetDevInfo` (§7.1.9).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GetDevInfo(hDev: HANDLE, pDevInfo: *mut DEVINFO) -> ULONG {
    guard(|| {
        let info = state::table().device_info(id(hDev)?)?;
        unsafe { put(pDevInfo, info) }
    })
}

/// `SKF_SetLabel` (§7.1.8): fewer than 32 bytes; needs device authentication here.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_SetLabel(hDev: HANDLE, szLabel: LPSTR) -> ULONG {
    guard(|| {
        let label = unsafe { string(szLabel, 31) }.map_err(|_| sar::SAR_INVALIDPARAMERR)?;
        state::table().set_label(id(hDev)?, &label)
    })
}

// ---- Access control (§7.2) ----

/// `SKF_GenRandom` (§7.6.2): 1 to 1024 random bytes; up to 16 are also the device
/// authentication challenge.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GenRandom(hDev: HANDLE, pbRandom: *mut BYTE, ulRandomLen: ULONG) -> ULONG {
    guard(|| {
        if pbRandom.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let random = state::table().gen_random(id(hDev)?, ulRandomLen as usize)?;
        // SAFETY: the caller's buffer of `ulRandomLen` bytes.
        unsafe { ptr::copy_nonoverlapping(random.as_ptr(), pbRandom, random.len()) };
        Ok(())
    })
}

/// `SKF_DevAuth` (§7.2.3): the last challenge, padded with zeros to 16 bytes and encrypted
/// with SM4-ECB under the device authentication key. A wrong value is `SAR_FAIL`.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_DevAuth(hDev: HANDLE, pbAuthData: *mut BYTE, ulLen: ULONG) -> ULONG {
    guard(|| {
        let data = unsafe { input(pbAuthData, ulLen, 64) }?;
        state::table().dev_auth(id(hDev)?, data)
    })
}

/// `SKF_ChangeDevAuthKey` (§7.2.2): a new 16-byte key, after device authentication.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ChangeDevAuthKey(hDev: HANDLE, pbKeyValue: *mut BYTE, ulKeyLen: ULONG) -> ULONG {
    guard(|| {
        let key = Zeroizing::new(unsafe { input(pbKeyValue, ulKeyLen, 64) }?.to_vec());
        state::table().change_dev_auth_key(id(hDev)?, &key)
    })
}

/// `SKF_VerifyPIN` (§7.2.6): a wrong PIN is `SAR_PIN_INCORRECT` with the tries left (0 when
/// this try locked it); a locked one `SAR_PIN_LOCKED`.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_VerifyPIN(
    hApplication: HANDLE,
    ulPINType: ULONG,
    szPIN: LPSTR,
    pulRetryCount: *mut ULONG,
) -> ULONG {
    guard(|| unsafe {
        let pin = secret(szPIN)?;
        pin_result(state::table().verify_pin(id(hApplication)?, ulPINType, &pin), pulRetryCount)
    })
}

/// `SKF_ChangePIN` (§7.2.4).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ChangePIN(
    hApplication: HANDLE,
    ulPINType: ULONG,
    szOldPin: LPSTR,
    szNewPin: LPSTR,
    pulRetryCount: *mut ULONG,
) -> ULONG {
    guard(|| unsafe {
        let (old, new) = (secret(szOldPin)?, secret(szNewPin)?);
        pin_result(state::table().change_pin(id(hApplication)?, ulPINType, &old, &new), pulRetryCount)
    })
}

/// `SKF_GetPINInfo` (§7.2.5).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GetPINInfo(
    hApplication: HANDLE,
    ulPINType: ULONG,
    pulMaxRetryCount: *mut ULONG,
    pulRemainRetryCount: *mut ULONG,
    pbDefaultPin: *mut BOOL,
) -> ULONG {
    guard(|| unsafe {
        if pulMaxRetryCount.is_null() || pulRemainRetryCount.is_null() || pbDefaultPin.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let (max, remaining, default) = state::table().pin_info(id(hApplication)?, ulPINType)?;
        put(pulMaxRetryCount, max)?;
        put(pulRemainRetryCount, remaining)?;
        put(pbDefaultPin, if default { ffi::TRUE } else { ffi::FALSE })
    })
}

/// `SKF_UnblockPIN` (§7.2.7): the admin PIN sets a new user PIN and restores its counter; a
/// wrong admin PIN reports the admin PIN's tries left.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_UnblockPIN(
    hApplication: HANDLE,
    szAdminPIN: LPSTR,
    szNewUserPIN: LPSTR,
    pulRetryCount: *mut ULONG,
) -> ULONG {
    guard(|| unsafe {
        let (admin, user) = (secret(szAdminPIN)?, secret(szNewUserPIN)?);
        pin_result(state::table().unblock_pin(id(hApplication)?, &admin, &user), pulRetryCount)
    })
}

/// `SKF_ClearSecureState` (§7.2.8).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ClearSecureState(hApplication: HANDLE) -> ULONG {
    guard(|| state::table().clear_secure_state(id(hApplication)?))
}

// ---- Applications (§7.3) ----

/// `SKF_CreateApplication` (§7.3.2): after device authentication; PINs of 6 to 32 bytes,
/// retry counts 1 to 15.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
#[allow(clippy::too_many_arguments)]
pub unsafe extern "system" fn SKF_CreateApplication(
    hDev: HANDLE,
    szAppName: LPSTR,
    szAdminPin: LPSTR,
    dwAdminPinRetryCount: DWORD,
    szUserPin: LPSTR,
    dwUserPinRetryCount: DWORD,
    dwCreateFileRights: DWORD,
    phApplication: *mut HANDLE,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szAppName, MAX_NAME)?;
        let (admin, user) = (secret(szAdminPin)?, secret(szUserPin)?);
        if phApplication.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let app = state::table().create_application(
            id(hDev)?,
            &name,
            &admin,
            dwAdminPinRetryCount,
            &user,
            dwUserPinRetryCount,
            dwCreateFileRights,
        )?;
        put(phApplication, handle(app))
    })
}

/// `SKF_EnumApplication` (§7.3.3).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_EnumApplication(hDev: HANDLE, szAppName: LPSTR, pulSize: *mut ULONG) -> ULONG {
    guard(|| {
        let names = state::table().applications(id(hDev)?)?;
        unsafe { output(szAppName.cast(), pulSize, &multi_string(&names)) }
    })
}

/// `SKF_DeleteApplication` (§7.3.4): after device authentication.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_DeleteApplication(hDev: HANDLE, szAppName: LPSTR) -> ULONG {
    guard(|| {
        let name = unsafe { string(szAppName, MAX_NAME) }?;
        state::table().delete_application(id(hDev)?, &name)
    })
}

/// `SKF_OpenApplication` (§7.3.5).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_OpenApplication(hDev: HANDLE, szAppName: LPSTR, phApplication: *mut HANDLE) -> ULONG {
    guard(|| unsafe {
        let name = string(szAppName, MAX_NAME)?;
        if phApplication.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let app = state::table().open_application(id(hDev)?, &name)?;
        put(phApplication, handle(app))
    })
}

/// `SKF_CloseApplication` (§7.3.6): here it also ends the handle's security state.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_CloseApplication(hApplication: HANDLE) -> ULONG {
    guard(|| state::table().close_application(id(hApplication)?))
}

// ---- Files (§7.4) ----

/// `SKF_CreateFile` (§7.4.2).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_CreateFile(
    hApplication: HANDLE,
    szFileName: LPSTR,
    ulFileSize: ULONG,
    ulReadRights: ULONG,
    ulWriteRights: ULONG,
) -> ULONG {
    guard(|| {
        let name = unsafe { string(szFileName, 32) }?;
        state::table().create_file(id(hApplication)?, &name, ulFileSize as usize, ulReadRights, ulWriteRights)
    })
}

/// `SKF_DeleteFile` (§7.4.3).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_DeleteFile(hApplication: HANDLE, szFileName: LPSTR) -> ULONG {
    guard(|| {
        let name = unsafe { string(szFileName, 32) }?;
        state::table().delete_file(id(hApplication)?, &name)
    })
}

/// `SKF_EnumFiles` (§7.4.4).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_EnumFiles(hApplication: HANDLE, szFileList: LPSTR, pulSize: *mut ULONG) -> ULONG {
    guard(|| {
        let names = state::table().files(id(hApplication)?)?;
        unsafe { output(szFileList.cast(), pulSize, &multi_string(&names)) }
    })
}

/// `SKF_GetFileInfo` (§7.4.5).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GetFileInfo(
    hApplication: HANDLE,
    szFileName: LPSTR,
    pFileInfo: *mut FILEATTRIBUTE,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szFileName, 32)?;
        let info = state::table().file_info(id(hApplication)?, &name)?;
        put(pFileInfo, info)
    })
}

/// `SKF_ReadFile` (§7.4.6): up to `ulSize` bytes from `ulOffset`; `*pulOutLen` is the
/// buffer's size on the way in, the bytes read on the way out (NULL buffer: the size).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ReadFile(
    hApplication: HANDLE,
    szFileName: LPSTR,
    ulOffset: ULONG,
    ulSize: ULONG,
    pbOutData: *mut BYTE,
    pulOutLen: *mut ULONG,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szFileName, 32)?;
        let data = state::table().read_file(id(hApplication)?, &name, ulOffset as usize, ulSize as usize)?;
        output(pbOutData, pulOutLen, &data)
    })
}

/// `SKF_WriteFile` (§7.4.7): within the size fixed at creation.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_WriteFile(
    hApplication: HANDLE,
    szFileName: LPSTR,
    ulOffset: ULONG,
    pbInData: *mut BYTE,
    ulSize: ULONG,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szFileName, 32)?;
        let data = input(pbInData, ulSize, state::MAX_FILE_SIZE)?;
        state::table().write_file(id(hApplication)?, &name, ulOffset as usize, data)
    })
}

// ---- Containers (§7.5) ----

/// `SKF_CreateContainer` (§7.5.2): names up to 64 bytes, with the user PIN verified.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_CreateContainer(
    hApplication: HANDLE,
    szContainerName: LPSTR,
    phContainer: *mut HANDLE,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szContainerName, MAX_NAME)?;
        if phContainer.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let container = state::table().create_container(id(hApplication)?, &name)?;
        put(phContainer, handle(container))
    })
}

/// `SKF_DeleteContainer` (§7.5.3).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_DeleteContainer(hApplication: HANDLE, szContainerName: LPSTR) -> ULONG {
    guard(|| {
        let name = unsafe { string(szContainerName, MAX_NAME) }?;
        state::table().delete_container(id(hApplication)?, &name)
    })
}

/// `SKF_OpenContainer` (§7.5.4); no such container is `SAR_FAIL`.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_OpenContainer(
    hApplication: HANDLE,
    szContainerName: LPSTR,
    phContainer: *mut HANDLE,
) -> ULONG {
    guard(|| unsafe {
        let name = string(szContainerName, MAX_NAME)?;
        if phContainer.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let container = state::table().open_container(id(hApplication)?, &name)?;
        put(phContainer, handle(container))
    })
}

/// `SKF_CloseContainer` (§7.5.5).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_CloseContainer(hContainer: HANDLE) -> ULONG {
    guard(|| state::table().close_container(id(hContainer)?))
}

/// `SKF_EnumContainer` (§7.5.6).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_EnumContainer(
    hApplication: HANDLE,
    szContainerName: LPSTR,
    pulSize: *mut ULONG,
) -> ULONG {
    guard(|| {
        let names = state::table().containers(id(hApplication)?)?;
        unsafe { output(szContainerName.cast(), pulSize, &multi_string(&names)) }
    })
}

/// `SKF_GetContainerType` (§7.5.7): 0 empty, 2 ECC.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GetContainerType(hContainer: HANDLE, pulContainerType: *mut ULONG) -> ULONG {
    guard(|| {
        let kind = state::table().container_type(id(hContainer)?)?;
        unsafe { put(pulContainerType, kind) }
    })
}

/// `SKF_ImportCertificate` (§7.5.8): `bSignFlag` TRUE for the signing certificate; with the
/// user PIN verified.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ImportCertificate(
    hContainer: HANDLE,
    bSignFlag: BOOL,
    pbCert: *mut BYTE,
    ulCertLen: ULONG,
) -> ULONG {
    guard(|| {
        let der = unsafe { input(pbCert, ulCertLen, state::MAX_CERTIFICATE) }?;
        state::table().import_certificate(id(hContainer)?, bSignFlag != ffi::FALSE, der)
    })
}

/// `SKF_ExportCertificate` (§7.5.9): none is `SAR_CERTNOTFOUNTERR`.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ExportCertificate(
    hContainer: HANDLE,
    bSignFlag: BOOL,
    pbCert: *mut BYTE,
    pulCertLen: *mut ULONG,
) -> ULONG {
    guard(|| {
        let der = state::table().export_certificate(id(hContainer)?, bSignFlag != ffi::FALSE)?;
        unsafe { output(pbCert, pulCertLen, &der) }
    })
}

// ---- Cryptographic services (§7.6) ----

/// `SKF_GenECCKeyPair` (§7.6.11): SGD_SM2_1 only (else `SAR_NOTSUPPORTYETERR`), with the
/// user PIN verified.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_GenECCKeyPair(
    hContainer: HANDLE,
    ulAlgId: ULONG,
    pBlob: *mut ECCPUBLICKEYBLOB,
) -> ULONG {
    guard(|| {
        if pBlob.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let (x, y) = state::table().generate_sm2(id(hContainer)?, ulAlgId)?;
        unsafe { put(pBlob, sm2_public_key_blob(&x, &y)) }
    })
}

/// `SKF_ExportPublicKey` (§7.6.23): the signing key (`bSignFlag` TRUE) as an
/// `ECCPUBLICKEYBLOB`; there are no encryption keys (`SAR_KEYNOTFOUNTERR`).
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ExportPublicKey(
    hContainer: HANDLE,
    bSignFlag: BOOL,
    pbBlob: *mut BYTE,
    pulBlobLen: *mut ULONG,
) -> ULONG {
    guard(|| {
        let (x, y) = state::table().public_key(id(hContainer)?, bSignFlag != ffi::FALSE)?;
        let blob = sm2_public_key_blob(&x, &y);
        // SAFETY: a packed struct of integers and bytes, viewed as its bytes.
        let bytes =
            unsafe { std::slice::from_raw_parts((&raw const blob).cast::<u8>(), size_of::<ECCPUBLICKEYBLOB>()) };
        unsafe { output(pbBlob, pulBlobLen, bytes) }
    })
}

/// `SKF_ECCSignData` (§7.6.13): signs the 32 bytes given — "the hash of the data to sign;
/// for SM2, the result of the SM2 signature preprocessing" SM3(Z_A ‖ M) — with the user PIN
/// verified; r and s right-aligned in the blob.
///
/// # Safety
/// See the [module docs](self).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn SKF_ECCSignData(
    hContainer: HANDLE,
    pbData: *mut BYTE,
    ulDataLen: ULONG,
    pSignature: *mut ECCSIGNATUREBLOB,
) -> ULONG {
    guard(|| unsafe {
        if pSignature.is_null() {
            return Err(sar::SAR_INVALIDPARAMERR);
        }
        let digest = input(pbData, ulDataLen, 64)?;
        let (r, s) = state::table().sign(id(hContainer)?, digest)?;
        put(pSignature, sm2_signature_blob(&r, &s))
    })
}

// The exports have exactly the types the driver loads them as.
const _: [(); 0] = {
    use ffi::functions as f;
    let _: f::EnumDev = SKF_EnumDev;
    let _: f::ConnectDev = SKF_ConnectDev;
    let _: f::DisConnectDev = SKF_DisConnectDev;
    let _: f::SetLabel = SKF_SetLabel;
    let _: f::GetDevInfo = SKF_GetDevInfo;
    let _: f::ChangeDevAuthKey = SKF_ChangeDevAuthKey;
    let _: f::DevAuth = SKF_DevAuth;
    let _: f::ChangePIN = SKF_ChangePIN;
    let _: f::GetPINInfo = SKF_GetPINInfo;
    let _: f::VerifyPIN = SKF_VerifyPIN;
    let _: f::UnblockPIN = SKF_UnblockPIN;
    let _: f::ClearSecureState = SKF_ClearSecureState;
    let _: f::CreateApplication = SKF_CreateApplication;
    let _: f::EnumApplication = SKF_EnumApplication;
    let _: f::DeleteApplication = SKF_DeleteApplication;
    let _: f::OpenApplication = SKF_OpenApplication;
    let _: f::CloseApplication = SKF_CloseApplication;
    let _: f::CreateFile = SKF_CreateFile;
    let _: f::DeleteFile = SKF_DeleteFile;
    let _: f::EnumFiles = SKF_EnumFiles;
    let _: f::GetFileInfo = SKF_GetFileInfo;
    let _: f::ReadFile = SKF_ReadFile;
    let _: f::WriteFile = SKF_WriteFile;
    let _: f::CreateContainer = SKF_CreateContainer;
    let _: f::DeleteContainer = SKF_DeleteContainer;
    let _: f::OpenContainer = SKF_OpenContainer;
    let _: f::CloseContainer = SKF_CloseContainer;
    let _: f::EnumContainer = SKF_EnumContainer;
    let _: f::ImportCertificate = SKF_ImportCertificate;
    let _: f::ExportCertificate = SKF_ExportCertificate;
    let _: f::GenRandom = SKF_GenRandom;
    let _: f::GenECCKeyPair = SKF_GenECCKeyPair;
    let _: f::ECCSignData = SKF_ECCSignData;
    let _: f::ExportPublicKey = SKF_ExportPublicKey;
    []
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::c_char;

    #[test]
    fn name_lists_and_size_queries() {
        assert_eq!(multi_string(&[]), b"\0\0");
        assert_eq!(multi_string(&["A".into(), "BC".into()]), b"A\0BC\0\0");
        let data = b"hello";
        let mut len: ULONG = 0;
        unsafe {
            assert_eq!(output(ptr::null_mut(), &mut len, data), Ok(()));
            assert_eq!(len, 5);
            let mut small = [0u8; 3];
            len = 3;
            assert_eq!(output(small.as_mut_ptr(), &mut len, data), Err(sar::SAR_BUFFER_TOO_SMALL));
            assert_eq!((len, small), (5, [0; 3]));
            let mut room = [0u8; 8];
            len = 8;
            assert_eq!(output(room.as_mut_ptr(), &mut len, data), Ok(()));
            assert_eq!((len, &room[..5]), (5, &data[..]));
            assert_eq!(output(room.as_mut_ptr(), ptr::null_mut(), data), Err(sar::SAR_INVALIDPARAMERR));
        }
    }

    #[test]
    fn strings_are_bounded_and_checked() {
        unsafe {
            assert_eq!(string(c"YIQIAN".as_ptr().cast_mut(), 64), Ok("YIQIAN".to_owned()));
            assert_eq!(string(ptr::null_mut(), 64), Err(sar::SAR_INVALIDPARAMERR));
            let long = std::ffi::CString::new("x".repeat(65)).unwrap();
            assert_eq!(string(long.as_ptr().cast_mut(), 64), Err(sar::SAR_NAMELENERR));
            let bad = [0xFFu8, 0];
            assert_eq!(string(bad.as_ptr().cast::<c_char>().cast_mut(), 64), Err(sar::SAR_INVALIDPARAMERR));
            assert_eq!(secret(c"123456".as_ptr().cast_mut()).unwrap().as_slice(), b"123456");
        }
    }

    #[test]
    fn a_panic_becomes_sar_fail() {
        assert_eq!(guard(|| panic!("inside")), sar::SAR_FAIL);
        assert_eq!(guard(|| Err(sar::SAR_PIN_LOCKED)), sar::SAR_PIN_LOCKED);
        // The table stays usable after a panic.
        assert_eq!(unsafe { SKF_DisConnectDev(handle(12345)) }, sar::SAR_INVALIDHANDLEERR);
    }
}
