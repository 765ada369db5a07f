rchar: 43267
wchar: 262
syscr: 78
syscw: 25
read_bytes: 0
write_bytes: 4096
cancelled_write_bytes: 0
