#!/bin/sh
# Never start daemons while packages are installed in an image build (as Docker's debian image).
exit 101
