// Ends an instruction set's region (isa_avx512.h / isa_avx2.h), so the next one can define its own.
#undef SFX
#undef VW
#undef VEC
#undef LOAD
#undef STORE
#undef SET1
#undef ZERO
#undef ADD
#undef SUB
#undef MUL
#undef FMA
#undef FNMA
#undef TRANSPOSE
