#include "CXfrm.h"
