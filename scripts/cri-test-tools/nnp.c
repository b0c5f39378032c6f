/* nnp — the program of the nonewprivs test image (as kubernetes' test/images/nonewprivs):
 * installed set-user-ID root, it prints the effective user ID it runs with, so that a
 * container run as a user shows whether no_new_privs kept the set-user-ID bit from acting. */
#include <stdio.h>
#include <unistd.h>

int main(void)
{
    printf("Effective uid: %d\n", (int)geteuid());
    return 0;
}
