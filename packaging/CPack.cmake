# packaging/CPack.cmake - the Debian package (included from the top-level
# CMakeLists.txt after the install rules).
#
#   make package      Release build with CMAKE_INSTALL_PREFIX=/usr, then
#                     `cpack -G DEB` in build/: build/jobd_<version>_<arch>.deb
#
# What the package holds is what `cmake --install` installs (see the
# install rules), with these Debian additions: /etc/jobd/jobd.conf is a
# conffile (local edits survive upgrades; dpkg asks when both changed),
# and the maintainer scripts do what dh_installsystemd would (postinst):
# jobd.service is enabled on first install but not started, jobd.socket is
# left disabled, a running jobd is restarted on upgrade, and purge removes
# its state (/var/lib/private/jobd) and cache.
#
# Paths compiled into jobd (the OpenCL host in LIBEXECDIR) and written into
# the unit come from CMAKE_INSTALL_PREFIX, so the package must be built
# from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr (make package
# does that).

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "jobd")
set(CPACK_PACKAGE_VERSION "${PROJECT_VERSION}")
set(CPACK_PACKAGE_VENDOR "The jobd authors")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
  "job-scheduling daemon with an HTTP API, threads, processes and OpenCL")
set(CPACK_PACKAGE_CONTACT
  "jobd developers <jobd-devel@example.org>")
set(CPACK_PACKAGING_INSTALL_PREFIX "${CMAKE_INSTALL_PREFIX}")
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "packaging: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; "
    "a .deb wants /usr (use `make package`)")
endif()
# Binaries stripped (the build has -g); output files named the Debian way.
set(CPACK_STRIP_FILES ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)

set(CPACK_DEBIAN_PACKAGE_NAME "jobd")
set(CPACK_DEBIAN_PACKAGE_SECTION "admin")
set(CPACK_DEBIAN_PACKAGE_PRIORITY "optional")
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${CPACK_PACKAGE_CONTACT}")
# The synopsis is CPACK_PACKAGE_DESCRIPTION_SUMMARY; this is the extended
# description (CPack indents it as a control file wants).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
  "jobd accepts jobs over HTTP and answers each submission at once with a job
ID that clients poll, wait on with a timeout, cancel, or read the result of.
Jobs run on a pool of threads, a pool of supervised worker processes
(including commands, with their output kept), or OpenCL devices. The
package includes the jobctl client, systemd units (jobd.service, hardened,
Type=notify; jobd.socket for socket activation), manual pages and bash
completion.")
# Dependencies from the libraries the binaries link (dpkg-shlibdeps).
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# deb-systemd-helper and deb-systemd-invoke, used by the maintainer scripts.
# procps: /bin/kill, which ExecReload= runs (a minimal Debian lacks it).
set(CPACK_DEBIAN_PACKAGE_DEPENDS "init-system-helpers (>= 1.54~), procps")
# An OpenCL implementation to run `opencl` jobs on (PoCL runs on any CPU).
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "pocl-opencl-icd | opencl-icd")

set(JOBD_PACKAGING_DIR "${CMAKE_CURRENT_LIST_DIR}")
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  "${JOBD_PACKAGING_DIR}/conffiles;${JOBD_PACKAGING_DIR}/postinst;${JOBD_PACKAGING_DIR}/prerm;${JOBD_PACKAGING_DIR}/postrm")
# 0644 for conffiles, 0755 for the scripts, as dpkg and lintian expect.
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

# The changelog's newest entry must be this version.
file(STRINGS "${JOBD_PACKAGING_DIR}/changelog" _jobd_changelog_top LIMIT_COUNT 1)
if(NOT _jobd_changelog_top MATCHES "^jobd \\(${PROJECT_VERSION}\\) ")
  message(WARNING "packaging/changelog does not start with version ${PROJECT_VERSION}: "
    "add an entry for it")
endif()

include(CPack)
