/* x86_access.c — the memory operand of an x86-64 instruction (see x86_access.h). */
#include "x86_access.h"

#include <string.h>

/* Map 0F SSE/AVX moves and compares, by opcode and mandatory prefix (0, 66, F3, F2);
 * `vector` is the register width. Without a prefix the integer forms are MMX (8 bytes). */
static size_t simd_size(uint8_t op, uint8_t prefix, bool rex_w, size_t vector)
{
    switch (op) {
    case 0x10: case 0x11:                                  /* movups/pd, movss, movsd */
        return prefix == 0xf3 ? 4 : prefix == 0xf2 ? 8 : vector;
    case 0x12: case 0x13: case 0x16: case 0x17: case 0xd6: /* movlps/hps, movq store */
        return 8;
    case 0x28: case 0x29: case 0x2b:                       /* movaps/pd, movntps */
        return vector;
    case 0x6f: case 0x7f:                                  /* movdqa/movdqu/vmovdqu* */
        return prefix ? vector : 8;
    case 0x74: case 0x75: case 0x76: case 0xda: case 0xde: /* pcmpeq, pminub (str* loops) */
    case 0xe7: case 0xeb: case 0xef:                       /* movntdq, por, pxor */
        return prefix == 0x66 ? vector : 8;
    case 0x6e:                                             /* movd/movq load */
        return rex_w ? 8 : 4;
    case 0x7e:                                             /* movq load, movd/movq store */
        return prefix == 0xf3 || rex_w ? 8 : 4;
    }
    return 0;
}

static size_t twobyte_size(uint8_t op, uint8_t prefix, bool rex_w, size_t word)
{
    if (op == 0xb6 || op == 0xbe || op == 0xb0 || op == 0xc0)  /* movzx/movsx byte, cmpxchg, xadd */
        return 1;
    if (op == 0xb7 || op == 0xbf)                              /* movzx/movsx word */
        return 2;
    if ((op >= 0x40 && op <= 0x4f) || op == 0xaf || op == 0xb1 || op == 0xc1)  /* cmov, imul */
        return word;
    return simd_size(op, prefix, rex_w, 16);
}

static size_t onebyte_size(const uint8_t *op, size_t word)
{
    switch (op[0]) {
    case 0x88: case 0x8a: case 0xc6: case 0x80: case 0x84: case 0x86: case 0xf6: case 0xfe:
    case 0xc0: case 0xd0: case 0xd2: case 0xa4: case 0xa6: case 0xaa: case 0xac: case 0xae:
        return 1;                                  /* byte forms of mov, alu, test, shifts, string ops */
    case 0x89: case 0x8b: case 0xc7: case 0x81: case 0x83: case 0x85: case 0x87: case 0xf7:
    case 0xc1: case 0xd1: case 0xd3: case 0xa5: case 0xa7: case 0xab: case 0xad: case 0xaf:
        return word;
    case 0x63:                                     /* movsxd reads 4 bytes */
        return 4;
    case 0x8f:                                     /* pop m64 */
        return 8;
    case 0xff: {                                   /* inc, dec; call, jmp, push m64 */
        uint8_t reg = (op[1] >> 3) & 7;
        return reg == 2 || reg == 4 || reg == 6 ? 8 : word;
    }
    }
    if (op[0] < 0x40 && (op[0] & 7) < 4)           /* add or adc sbb and sub xor cmp with memory */
        return op[0] & 1 ? word : 1;
    return 0;
}

/* Where the ModRM byte of the instruction is, and what the prefixes add to it. */
struct operand {
    const uint8_t *modrm;    /* NULL: no ModRM (string ops) */
    unsigned x, b;           /* REX.X and REX.B, from whichever prefix carries them */
    size_t disp8_scale;      /* EVEX compresses an 8-bit displacement by the access size */
    bool plain_address;      /* no segment override, no 32-bit address size */
};

static const int gregs_of[16] = {
    REG_RAX, REG_RCX, REG_RDX, REG_RBX, REG_RSP, REG_RBP, REG_RSI, REG_RDI,
    REG_R8, REG_R9, REG_R10, REG_R11, REG_R12, REG_R13, REG_R14, REG_R15,
};

static int32_t disp32(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* base + index * scale + displacement; false for a register operand or RIP-relative. */
static bool effective_address(const struct operand *o, const greg_t *regs, uintptr_t *out)
{
    uint8_t mod = o->modrm[0] >> 6, rm = o->modrm[0] & 7;
    const uint8_t *p = o->modrm + 1;
    uintptr_t a = 0;
    if (mod == 3 || (mod == 0 && rm == 5))
        return false;
    if (rm == 4) {
        uint8_t sib = *p++;
        unsigned index = ((sib >> 3) & 7) | o->x << 3;
        if (index != 4)
            a += (uintptr_t)regs[gregs_of[index]] << (sib >> 6);
        if ((sib & 7) == 5 && mod == 0) {
            a += (uintptr_t)(intptr_t)disp32(p);
            *out = a;
            return true;
        }
        a += (uintptr_t)regs[gregs_of[(sib & 7) | o->b << 3]];
    } else {
        a += (uintptr_t)regs[gregs_of[rm | o->b << 3]];
    }
    if (mod == 1)
        a += (uintptr_t)((intptr_t)(int8_t)*p * (intptr_t)o->disp8_scale);
    else if (mod == 2)
        a += (uintptr_t)(intptr_t)disp32(p);
    *out = a;
    return true;
}

void x86_access_decode(const void *pc_ptr, const greg_t *regs, struct x86_access *out)
{
    static const uint8_t vex_prefix[4] = {0, 0x66, 0xf3, 0xf2};
    const uint8_t *pc = pc_ptr;
    uint8_t prefix = 0, rex = 0;
    bool opsize16 = false;
    struct operand o = {NULL, 0, 0, 1, true};

    *out = (struct x86_access){0, false, 0};
    for (int n = 0;; pc++, n++) {
        if (n > 4)
            return;
        if (*pc == 0x66) {
            opsize16 = true;
            if (!prefix)
                prefix = 0x66;
        } else if (*pc == 0xf2 || *pc == 0xf3) {
            prefix = *pc;                          /* F2/F3 outrank 66 as the mandatory prefix */
        } else if (*pc == 0x64 || *pc == 0x65 || *pc == 0x67) {
            o.plain_address = false;               /* fs/gs (TLS), or 32-bit addresses */
        } else if (!(*pc == 0xf0 || *pc == 0x2e || *pc == 0x36 || *pc == 0x3e || *pc == 0x26)) {
            break;
        }
    }
    if ((*pc & 0xf0) == 0x40)                      /* REX */
        rex = *pc++;
    bool rex_w = rex & 8;
    size_t word = rex_w ? 8 : opsize16 ? 2 : 4;
    o.x = (rex >> 1) & 1;
    o.b = rex & 1;
    switch (pc[0]) {
    case 0xc5:                                     /* 2-byte VEX: map 0F implied */
        out->size = simd_size(pc[2], vex_prefix[pc[1] & 3], false, pc[1] & 4 ? 32 : 16);
        o.modrm = pc + 3;
        o.x = o.b = 0;
        break;
    case 0xc4:                                     /* 3-byte VEX */
        if ((pc[1] & 0x1f) != 1)
            return;
        out->size = simd_size(pc[3], vex_prefix[pc[2] & 3], pc[2] & 0x80, pc[2] & 4 ? 32 : 16);
        o.modrm = pc + 4;
        o.x = !(pc[1] & 0x40);
        o.b = !(pc[1] & 0x20);
        break;
    case 0x62:                                     /* EVEX: L'L picks 16, 32 or 64 */
        if ((pc[1] & 3) != 1)
            return;
        out->size = simd_size(pc[4], vex_prefix[pc[2] & 3], pc[2] & 0x80,
                              (size_t)16 << ((pc[3] >> 5) & 3));
        o.modrm = pc + 5;
        o.x = !(pc[1] & 0x40);
        o.b = !(pc[1] & 0x20);
        o.disp8_scale = out->size;
        break;
    case 0x0f:
        out->size = twobyte_size(pc[1], prefix, rex_w, word);
        o.modrm = pc + 2;
        break;
    default:
        out->size = onebyte_size(pc, word);
        o.modrm = pc[0] >= 0xa4 && pc[0] <= 0xaf ? NULL : pc + 1;
    }
    if (out->size && regs && o.modrm && o.plain_address)
        out->has_address = effective_address(&o, regs, &out->address);
}
