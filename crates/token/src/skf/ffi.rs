//! The C interface of GM/T 0016-2012 (智能密码钥匙密码应用接口规范) as far as yiqian uses it:
//! the basic types (§6.2), the constants (§6.1, §6.3, §6.4.12), the composite types (§6.4,
//! declared under `#pragma pack(1)` in the standard's header, hence `repr(C, packed)`), the
//! return codes (Appendix A, `SAR_*`) and the function types (§7) as the [SKF
//! driver](super) loads them and the software SKF library (`yiqian-softskf`) exports them.
//!
//! One definition serves both sides, so a mistake here would be shared by the driver and its
//! test double; the layouts were therefore checked against the standard's header text
//! (`DEVINFO` is 294 bytes with `MaxECCBufferSize` and `MaxBufferSize`, `ECCPUBLICKEYBLOB`
//! 132, `ECCSIGNATUREBLOB` 128, `FILEATTRIBUTE` 44; see the unit test), and the driver reads
//! `DEVINFO` into a larger zeroed buffer, because some vendors' headers leave those two fields
//! out.
//!
//! Calling convention: `DEVAPI` is `__stdcall` on 32-bit Windows and the C convention
//! elsewhere, which is what Rust's `extern "system"` means.

#![allow(non_camel_case_types, non_snake_case)]

use std::ffi::{c_char, c_void};

/// `ULONG`: unsigned 32-bit integer (§6.2).
pub type ULONG = u32;
/// `DWORD`: unsigned 32-bit integer (§6.2).
pub type DWORD = u32;
/// `BOOL`: `TRUE` (1) or `FALSE` (0), a 32-bit integer (§6.2).
pub type BOOL = i32;
/// `BYTE`: unsigned 8-bit integer (§6.2).
pub type BYTE = u8;
/// `CHAR` in structures: unsigned 8-bit (§6.2).
pub type CHAR = u8;
/// `LPSTR`: a NUL-terminated UTF-8 string (§6.2); multi-string lists end in a double NUL.
pub type LPSTR = *mut c_char;
/// `HANDLE`, `DEVHANDLE`, `HAPPLICATION`, `HCONTAINER` (§6.2): opaque pointers.
pub type HANDLE = *mut c_void;

/// `TRUE` (§6.3).
pub const TRUE: BOOL = 1;
/// `FALSE` (§6.3).
pub const FALSE: BOOL = 0;
/// `ADMIN_TYPE`: the administrator PIN (§6.3).
pub const ADMIN_TYPE: ULONG = 0;
/// `USER_TYPE`: the user PIN (§6.3).
pub const USER_TYPE: ULONG = 1;

/// `SGD_SM1_ECB` (§6.1.1): SM1, a classified cipher no host can compute.
pub const SGD_SM1_ECB: ULONG = 0x0000_0101;
/// `SGD_SMS4_ECB` (§6.1.1): SM4 in ECB mode.
pub const SGD_SMS4_ECB: ULONG = 0x0000_0401;
/// `SGD_SM2_1` (§6.1.2): SM2 signatures.
pub const SGD_SM2_1: ULONG = 0x0002_0100;
/// `SGD_SM3` (§6.1.3).
pub const SGD_SM3: ULONG = 0x0000_0001;

/// `SECURE_NEVER_ACCOUNT` (§6.4.12): nobody.
pub const SECURE_NEVER_ACCOUNT: ULONG = 0x0000_0000;
/// `SECURE_ADM_ACCOUNT` (§6.4.12): after the administrator PIN.
pub const SECURE_ADM_ACCOUNT: ULONG = 0x0000_0001;
/// `SECURE_USER_ACCOUNT` (§6.4.12): after the user PIN.
pub const SECURE_USER_ACCOUNT: ULONG = 0x0000_0010;
/// `SECURE_ANYONE_ACCOUNT` (§6.4.12): anyone.
pub const SECURE_ANYONE_ACCOUNT: ULONG = 0x0000_00FF;

/// `VERSION` (§6.4.1).
#[repr(C, packed)]
#[derive(Debug, Clone, Copy, Default)]
pub struct VERSION {
    /// Major version.
    pub major: BYTE,
    /// Minor version.
    pub minor: BYTE,
}

/// `DEVINFO` (§6.4.2). Strings are NUL-terminated ASCII (a full-length field has no NUL).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct DEVINFO {
    /// Version of this structure, 1.0.
    pub Version: VERSION,
    /// The device maker.
    pub Manufacturer: [CHAR; 64],
    /// The issuer.
    pub Issuer: [CHAR; 64],
    /// The label (SKF_SetLabel).
    pub Label: [CHAR; 32],
    /// The serial number.
    pub SerialNumber: [CHAR; 32],
    /// Hardware version.
    pub HWVersion: VERSION,
    /// Firmware version.
    pub FirmwareVersion: VERSION,
    /// Block ciphers (`SGD_*` bits).
    pub AlgSymCap: ULONG,
    /// Asymmetric algorithms.
    pub AlgAsymCap: ULONG,
    /// Hash algorithms.
    pub AlgHashCap: ULONG,
    /// The cipher of device authentication (`SGD_SMS4_ECB`, `SGD_SM1_ECB`, …).
    pub DevAuthAlgId: ULONG,
    /// Total storage, bytes.
    pub TotalSpace: ULONG,
    /// Free storage, bytes.
    pub FreeSpace: ULONG,
    /// Largest ECC operand.
    pub MaxECCBufferSize: ULONG,
    /// Largest block for ciphers, hashes (and, by custom, file reads and writes).
    pub MaxBufferSize: ULONG,
    /// Reserved.
    pub Reserved: [BYTE; 64],
}

/// Offsets of the `DEVINFO` fields the driver reads, the same in the vendors' shorter variant.
pub mod devinfo_offsets {
    /// `Manufacturer[64]`.
    pub const MANUFACTURER: usize = 2;
    /// `Issuer[64]`.
    pub const ISSUER: usize = 66;
    /// `Label[32]`.
    pub const LABEL: usize = 130;
    /// `SerialNumber[32]`.
    pub const SERIAL_NUMBER: usize = 162;
    /// `DevAuthAlgId`.
    pub const DEV_AUTH_ALG_ID: usize = 210;
    /// `MaxBufferSize` (absent in the shorter variant, where `Reserved` begins at 222).
    pub const MAX_BUFFER_SIZE: usize = 226;
}

/// The largest coordinate, in bytes (`ECC_MAX_XCOORDINATE_BITS_LEN / 8`).
pub const ECC_MAX_COORDINATE_BYTES: usize = 64;

/// `ECCPUBLICKEYBLOB` (§6.4.5): coordinates big-endian, right-aligned in their fields
/// (the last `BitLen / 8` bytes are significant).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct ECCPUBLICKEYBLOB {
    /// The key's bit length (256 for SM2).
    pub BitLen: ULONG,
    /// x.
    pub XCoordinate: [BYTE; ECC_MAX_COORDINATE_BYTES],
    /// y.
    pub YCoordinate: [BYTE; ECC_MAX_COORDINATE_BYTES],
}

/// `ECCSIGNATUREBLOB` (§6.4.8): r and s, big-endian, right-aligned.
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct ECCSIGNATUREBLOB {
    /// r.
    pub r: [BYTE; ECC_MAX_COORDINATE_BYTES],
    /// s.
    pub s: [BYTE; ECC_MAX_COORDINATE_BYTES],
}

/// `FILEATTRIBUTE` (§6.4.11).
#[repr(C, packed)]
#[derive(Clone, Copy)]
pub struct FILEATTRIBUTE {
    /// NUL-terminated name, at most 32 bytes.
    pub FileName: [CHAR; 32],
    /// The size fixed at creation.
    pub FileSize: ULONG,
    /// `SECURE_*` rights to read.
    pub ReadRights: ULONG,
    /// `SECURE_*` rights to write.
    pub WriteRights: ULONG,
}

/// All-zero values, the starting point of every out-parameter.
macro_rules! zeroed {
    ($($t:ty),*) => {$(
        impl $t {
            /// All fields zero.
            pub fn zeroed() -> $t {
                // SAFETY: a packed struct of integers and byte arrays: all-zero is a value.
                unsafe { std::mem::zeroed() }
            }
        }
    )*};
}
zeroed!(DEVINFO, ECCPUBLICKEYBLOB, ECCSIGNATUREBLOB, FILEATTRIBUTE);

/// The `SAR_*` return codes of GM/T 0016-2012 Appendix A. The standard ends at
/// `SAR_REACH_MAX_CONTAINER_COUNT`; the codes above it differ between vendors (0x0A000033
/// is `SAR_AUTH_BLOCKED` in one, `SAR_NOCREATEFILE_RIGHT` in another) and are not named.
pub mod sar {
    use super::ULONG;

    macro_rules! codes {
        ($($name:ident = $value:expr, $doc:literal;)*) => {
            $(#[doc = $doc] pub const $name: ULONG = $value;)*
            /// The name of a standard code, e.g. `SAR_PIN_INCORRECT`.
            pub fn name(code: ULONG) -> Option<&'static str> {
                match code {
                    $($value => Some(stringify!($name)),)*
                    _ => None,
                }
            }
        };
    }

    codes! {
        SAR_OK = 0x0000_0000, "成功 success";
        SAR_FAIL = 0x0A00_0001, "失败 failure";
        SAR_UNKNOWNERR = 0x0A00_0002, "异常错误 unexpected error";
        SAR_NOTSUPPORTYETERR = 0x0A00_0003, "不支持的服务 not supported";
        SAR_FILEERR = 0x0A00_0004, "文件操作错误 file operation error";
        SAR_INVALIDHANDLEERR = 0x0A00_0005, "无效的句柄 invalid handle";
        SAR_INVALIDPARAMERR = 0x0A00_0006, "无效的参数 invalid parameter";
        SAR_READFILEERR = 0x0A00_0007, "读文件错误 read error";
        SAR_WRITEFILEERR = 0x0A00_0008, "写文件错误 write error";
        SAR_NAMELENERR = 0x0A00_0009, "名称长度错误 name length";
        SAR_KEYUSAGEERR = 0x0A00_000A, "密钥用途错误 key usage";
        SAR_MODULUSLENERR = 0x0A00_000B, "模的长度错误 modulus length";
        SAR_NOTINITIALIZEERR = 0x0A00_000C, "未初始化 not initialised";
        SAR_OBJERR = 0x0A00_000D, "对象错误 object error";
        SAR_MEMORYERR = 0x0A00_000E, "内存错误 memory error";
        SAR_TIMEOUTERR = 0x0A00_000F, "超时 timeout";
        SAR_INDATALENERR = 0x0A00_0010, "输入数据长度错误 input length";
        SAR_INDATAERR = 0x0A00_0011, "输入数据错误 input data";
        SAR_GENRANDERR = 0x0A00_0012, "生成随机数错误 random generation";
        SAR_HASHOBJERR = 0x0A00_0013, "HASH对象错 hash object";
        SAR_HASHERR = 0x0A00_0014, "HASH运算错误 hash error";
        SAR_GENRSAKEYERR = 0x0A00_0015, "产生RSA密钥错 RSA key generation";
        SAR_RSAMODULUSLENERR = 0x0A00_0016, "RSA密钥模长错误 RSA modulus length";
        SAR_CSPIMPRTPUBKEYERR = 0x0A00_0017, "CSP服务导入公钥错误 public key import";
        SAR_RSAENCERR = 0x0A00_0018, "RSA加密错误 RSA encryption";
        SAR_RSADECERR = 0x0A00_0019, "RSA解密错误 RSA decryption";
        SAR_HASHNOTEQUALERR = 0x0A00_001A, "HASH值不相等 hash mismatch";
        SAR_KEYNOTFOUNTERR = 0x0A00_001B, "密钥未发现 key not found";
        SAR_CERTNOTFOUNTERR = 0x0A00_001C, "证书未发现 certificate not found";
        SAR_NOTEXPORTERR = 0x0A00_001D, "对象未导出 not exported";
        SAR_DECRYPTPADERR = 0x0A00_001E, "解密时做补丁错误 padding";
        SAR_MACLENERR = 0x0A00_001F, "MAC长度错误 MAC length";
        SAR_BUFFER_TOO_SMALL = 0x0A00_0020, "缓冲区不足 buffer too small";
        SAR_KEYINFOTYPEERR = 0x0A00_0021, "密钥类型错误 key type";
        SAR_NOT_EVENTERR = 0x0A00_0022, "无事件错误 no event";
        SAR_DEVICE_REMOVED = 0x0A00_0023, "设备已移除 device removed";
        SAR_PIN_INCORRECT = 0x0A00_0024, "PIN不正确 wrong PIN";
        SAR_PIN_LOCKED = 0x0A00_0025, "PIN被锁死 PIN locked";
        SAR_PIN_INVALID = 0x0A00_0026, "PIN无效 invalid PIN";
        SAR_PIN_LEN_RANGE = 0x0A00_0027, "PIN长度错误 PIN length";
        SAR_USER_ALREADY_LOGGED_IN = 0x0A00_0028, "用户已经登录 already logged in";
        SAR_USER_PIN_NOT_INITIALIZED = 0x0A00_0029, "没有初始化用户口令 user PIN not set";
        SAR_USER_TYPE_INVALID = 0x0A00_002A, "PIN类型错误 PIN type";
        SAR_APPLICATION_NAME_INVALID = 0x0A00_002B, "应用名称无效 application name";
        SAR_APPLICATION_EXISTS = 0x0A00_002C, "应用已经存在 application exists";
        SAR_USER_NOT_LOGGED_IN = 0x0A00_002D, "用户没有登录 not logged in";
        SAR_APPLICATION_NOT_EXISTS = 0x0A00_002E, "应用不存在 no such application";
        SAR_FILE_ALREADY_EXIST = 0x0A00_002F, "文件已经存在 file exists";
        SAR_NO_ROOM = 0x0A00_0030, "空间不足 no room";
        SAR_FILE_NOT_EXIST = 0x0A00_0031, "文件不存在 no such file";
        SAR_REACH_MAX_CONTAINER_COUNT = 0x0A00_0032, "已达到最大可管理容器数 too many containers";
    }
}

/// The function types of §7, one per function the driver calls.
pub mod functions {
    use super::*;

    /// `SKF_EnumDev(bPresent, szNameList, pulSize)` §7.1.4.
    pub type EnumDev = unsafe extern "system" fn(BOOL, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_ConnectDev(szName, phDev)` §7.1.5.
    pub type ConnectDev = unsafe extern "system" fn(LPSTR, *mut HANDLE) -> ULONG;
    /// `SKF_DisConnectDev(hDev)` §7.1.6.
    pub type DisConnectDev = unsafe extern "system" fn(HANDLE) -> ULONG;
    /// `SKF_SetLabel(hDev, szLabel)` §7.1.8.
    pub type SetLabel = unsafe extern "system" fn(HANDLE, LPSTR) -> ULONG;
    /// `SKF_GetDevInfo(hDev, pDevInfo)` §7.1.9.
    pub type GetDevInfo = unsafe extern "system" fn(HANDLE, *mut DEVINFO) -> ULONG;
    /// `SKF_ChangeDevAuthKey(hDev, pbKeyValue, ulKeyLen)` §7.2.2.
    pub type ChangeDevAuthKey = unsafe extern "system" fn(HANDLE, *mut BYTE, ULONG) -> ULONG;
    /// `SKF_DevAuth(hDev, pbAuthData, ulLen)` §7.2.3.
    pub type DevAuth = unsafe extern "system" fn(HANDLE, *mut BYTE, ULONG) -> ULONG;
    /// `SKF_ChangePIN(hApp, ulPINType, szOldPin, szNewPin, pulRetryCount)` §7.2.4.
    pub type ChangePIN = unsafe extern "system" fn(HANDLE, ULONG, LPSTR, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_GetPINInfo(hApp, ulPINType, pulMaxRetryCount, pulRemainRetryCount, pbDefaultPin)`
    /// §7.2.5.
    pub type GetPINInfo = unsafe extern "system" fn(HANDLE, ULONG, *mut ULONG, *mut ULONG, *mut BOOL) -> ULONG;
    /// `SKF_VerifyPIN(hApp, ulPINType, szPIN, pulRetryCount)` §7.2.6.
    pub type VerifyPIN = unsafe extern "system" fn(HANDLE, ULONG, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_UnblockPIN(hApp, szAdminPIN, szNewUserPIN, pulRetryCount)` §7.2.7.
    pub type UnblockPIN = unsafe extern "system" fn(HANDLE, LPSTR, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_ClearSecureState(hApp)` §7.2.8.
    pub type ClearSecureState = unsafe extern "system" fn(HANDLE) -> ULONG;
    /// `SKF_CreateApplication(hDev, szAppName, szAdminPin, dwAdminPinRetryCount, szUserPin,
    /// dwUserPinRetryCount, dwCreateFileRights, phApplication)` §7.3.2.
    pub type CreateApplication =
        unsafe extern "system" fn(HANDLE, LPSTR, LPSTR, DWORD, LPSTR, DWORD, DWORD, *mut HANDLE) -> ULONG;
    /// `SKF_EnumApplication(hDev, szAppName, pulSize)` §7.3.3.
    pub type EnumApplication = unsafe extern "system" fn(HANDLE, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_DeleteApplication(hDev, szAppName)` §7.3.4.
    pub type DeleteApplication = unsafe extern "system" fn(HANDLE, LPSTR) -> ULONG;
    /// `SKF_OpenApplication(hDev, szAppName, phApplication)` §7.3.5.
    pub type OpenApplication = unsafe extern "system" fn(HANDLE, LPSTR, *mut HANDLE) -> ULONG;
    /// `SKF_CloseApplication(hApp)` §7.3.6.
    pub type CloseApplication = unsafe extern "system" fn(HANDLE) -> ULONG;
    /// `SKF_CreateFile(hApp, szFileName, ulFileSize, ulReadRights, ulWriteRights)` §7.4.2.
    pub type CreateFile = unsafe extern "system" fn(HANDLE, LPSTR, ULONG, ULONG, ULONG) -> ULONG;
    /// `SKF_DeleteFile(hApp, szFileName)` §7.4.3.
    pub type DeleteFile = unsafe extern "system" fn(HANDLE, LPSTR) -> ULONG;
    /// `SKF_EnumFiles(hApp, szFileList, pulSize)` §7.4.4.
    pub type EnumFiles = unsafe extern "system" fn(HANDLE, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_GetFileInfo(hApp, szFileName, pFileInfo)` §7.4.5.
    pub type GetFileInfo = unsafe extern "system" fn(HANDLE, LPSTR, *mut FILEATTRIBUTE) -> ULONG;
    /// `SKF_ReadFile(hApp, szFileName, ulOffset, ulSize, pbOutData, pulOutLen)` §7.4.6.
    pub type ReadFile = unsafe extern "system" fn(HANDLE, LPSTR, ULONG, ULONG, *mut BYTE, *mut ULONG) -> ULONG;
    /// `SKF_WriteFile(hApp, szFileName, ulOffset, pbInData, ulSize)` §7.4.7.
    pub type WriteFile = unsafe extern "system" fn(HANDLE, LPSTR, ULONG, *mut BYTE, ULONG) -> ULONG;
    /// `SKF_CreateContainer(hApp, szContainerName, phContainer)` §7.5.2.
    pub type CreateContainer = unsafe extern "system" fn(HANDLE, LPSTR, *mut HANDLE) -> ULONG;
    /// `SKF_DeleteContainer(hApp, szContainerName)` §7.5.3.
    pub type DeleteContainer = unsafe extern "system" fn(HANDLE, LPSTR) -> ULONG;
    /// `SKF_OpenContainer(hApp, szContainerName, phContainer)` §7.5.4.
    pub type OpenContainer = unsafe extern "system" fn(HANDLE, LPSTR, *mut HANDLE) -> ULONG;
    /// `SKF_CloseContainer(hContainer)` §7.5.5.
    pub type CloseContainer = unsafe extern "system" fn(HANDLE) -> ULONG;
    /// `SKF_EnumContainer(hApp, szContainerName, pulSize)` §7.5.6.
    pub type EnumContainer = unsafe extern "system" fn(HANDLE, LPSTR, *mut ULONG) -> ULONG;
    /// `SKF_ImportCertificate(hContainer, bSignFlag, pbCert, ulCertLen)` §7.5.8.
    pub type ImportCertificate = unsafe extern "system" fn(HANDLE, BOOL, *mut BYTE, ULONG) -> ULONG;
    /// `SKF_ExportCertificate(hContainer, bSignFlag, pbCert, pulCertLen)` §7.5.9.
    pub type ExportCertificate = unsafe extern "system" fn(HANDLE, BOOL, *mut BYTE, *mut ULONG) -> ULONG;
    /// `SKF_GenRandom(hDev, pbRandom, ulRandomLen)` §7.6.2.
    pub type GenRandom = unsafe extern "system" fn(HANDLE, *mut BYTE, ULONG) -> ULONG;
    /// `SKF_GenECCKeyPair(hContainer, ulAlgId, pBlob)` §7.6.11.
    pub type GenECCKeyPair = unsafe extern "system" fn(HANDLE, ULONG, *mut ECCPUBLICKEYBLOB) -> ULONG;
    /// `SKF_ECCSignData(hContainer, pbData, ulDataLen, pSignature)` §7.6.13.
    pub type ECCSignData = unsafe extern "system" fn(HANDLE, *mut BYTE, ULONG, *mut ECCSIGNATUREBLOB) -> ULONG;
    /// `SKF_ExportPublicKey(hContainer, bSignFlag, pbBlob, pulBlobLen)` §7.6.23.
    pub type ExportPublicKey = unsafe extern "system" fn(HANDLE, BOOL, *mut BYTE, *mut ULONG) -> ULONG;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::{align_of, offset_of, size_of};

    #[test]
    fn layouts_match_the_standard_header() {
        assert_eq!(size_of::<VERSION>(), 2);
        assert_eq!(size_of::<DEVINFO>(), 294);
        assert_eq!(align_of::<DEVINFO>(), 1);
        assert_eq!(offset_of!(DEVINFO, Manufacturer), devinfo_offsets::MANUFACTURER);
        assert_eq!(offset_of!(DEVINFO, Issuer), devinfo_offsets::ISSUER);
        assert_eq!(offset_of!(DEVINFO, Label), devinfo_offsets::LABEL);
        assert_eq!(offset_of!(DEVINFO, SerialNumber), devinfo_offsets::SERIAL_NUMBER);
        assert_eq!(offset_of!(DEVINFO, AlgSymCap), 198);
        assert_eq!(offset_of!(DEVINFO, DevAuthAlgId), devinfo_offsets::DEV_AUTH_ALG_ID);
        assert_eq!(offset_of!(DEVINFO, MaxBufferSize), devinfo_offsets::MAX_BUFFER_SIZE);
        assert_eq!(offset_of!(DEVINFO, Reserved), 230);
        assert_eq!(size_of::<ECCPUBLICKEYBLOB>(), 132);
        assert_eq!(size_of::<ECCSIGNATUREBLOB>(), 128);
        assert_eq!(size_of::<FILEATTRIBUTE>(), 44);
    }

    #[test]
    fn codes_have_their_standard_names() {
        assert_eq!(sar::name(0x0A00_0024), Some("SAR_PIN_INCORRECT"));
        assert_eq!(sar::name(sar::SAR_PIN_LOCKED), Some("SAR_PIN_LOCKED"));
        assert_eq!(sar::name(0x0A00_0003), Some("SAR_NOTSUPPORTYETERR"));
        assert_eq!(sar::name(0x0A00_0033), None);
    }
}
